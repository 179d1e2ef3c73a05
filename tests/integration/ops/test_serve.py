"""`wire serve` over a real socket: metrics exposition, health, status and POST /reingest."""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
import redis

from tests.support.helpers import test_settings
from worker.metrics import COUNTERS, MetricsBatch, _field
from worker.ops.serve import serve
from worker.pipeline.deps import Deps
from worker.settings import parse_sources

TOKEN = "s3cret-0123456789abcdef0123456789"  # WIRE_ADMIN_TOKEN: at least 32 characters
SOURCES = "sources:\n- name: example\n  feeds: [https://news.example.com/feed]\n  interval: 1m\n"


@pytest.fixture
def server(r: redis.Redis, redis_url: str, prefix: str) -> Iterator[tuple[str, list, Deps]]:
    deps = Deps.create(test_settings(redis_url, prefix, WIRE_ADMIN_TOKEN=TOKEN),
                       parse_sources(SOURCES, "s.yaml"), client=r)
    enqueued: list[tuple[dict[str, Any], bool]] = []
    httpd = serve(deps, "127.0.0.1", 0, lambda c, f: enqueued.append((c, f)), lambda s: None)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", enqueued, deps
    httpd.shutdown()
    httpd.server_close()


def call(url: str, data: bytes | None = None, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    req = urllib.request.Request(url, data=data, headers=headers or {}, method="POST" if data is not None else "GET")
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


def test_metrics_expose_every_spec_metric(server, r: redis.Redis) -> None:
    """/metrics carries every SPEC metric name, with counts written by any process."""
    base, _, deps = server
    batch = MetricsBatch()
    batch.inc("wire_items_published_total", source="example", event="new")
    batch.observe("wire_fetch_seconds", 0.3, source="example")
    batch.observe("wire_extract_seconds", 0.01)
    batch.flush(r, deps.keys.metrics())
    status, body = call(base + "/metrics")
    text = body.decode()
    assert status == 200
    for name in list(COUNTERS) + ["wire_fetch_seconds_bucket", "wire_extract_seconds_count"]:
        assert f"# TYPE {name.removesuffix('_bucket').removesuffix('_count')}" in text, name
    for gauge in ("wire_queue_length", "wire_stream_length", "wire_stream_pending",
                  "wire_source_last_success_timestamp_seconds"):
        assert f"# TYPE {gauge} gauge" in text
    assert 'wire_items_published_total{event="new",source="example"} 1.0' in text
    assert 'wire_queue_length{queue="fetch"} 0.0' in text


def test_histograms_render_cumulative_from_bins_and_older_buckets(server, r: redis.Redis) -> None:
    """Observations are stored as one bin each; /metrics shows Prometheus' cumulative buckets.

    Cumulative `_bucket` fields written by workers from before bins (a rolling
    upgrade) are added in, so no observation disappears from the histogram.
    """
    base, _, deps = server
    batch = MetricsBatch()
    for seconds in (0.001, 0.003, 0.003, 0.04, 7.0):
        batch.observe("wire_extract_seconds", seconds)
    assert sum(1 for f in batch.values if "_bin" in f) == 4  # one field per bin hit, not per bucket above
    batch.flush(r, deps.keys.metrics())
    # an older worker's cumulative buckets for one observation of 0.02 s
    for le in ("0.025", "0.05", "0.1", "0.25", "0.5", "1.0", "2.5", "+Inf"):
        r.hincrbyfloat(deps.keys.metrics(), _field("wire_extract_seconds_bucket", {"le": le}), 1)
    r.hincrbyfloat(deps.keys.metrics(), _field("wire_extract_seconds_count", {}), 1)
    r.hincrbyfloat(deps.keys.metrics(), _field("wire_extract_seconds_sum", {}), 0.02)
    text = call(base + "/metrics")[1].decode()
    expect = {"0.002": 1, "0.005": 3, "0.01": 3, "0.025": 4, "0.05": 5, "2.5": 5, "+Inf": 6}
    for le, count in expect.items():
        assert f'wire_extract_seconds_bucket{{le="{le}"}} {float(count)}' in text, le
    assert "wire_extract_seconds_count 6.0" in text


def test_metrics_pass_promtool(server) -> None:
    """The exposition passes `promtool check metrics` (when promtool is installed)."""
    import shutil
    import subprocess

    if not shutil.which("promtool"):
        pytest.skip("promtool not installed")
    _, body = call(server[0] + "/metrics")
    proc = subprocess.run(["promtool", "check", "metrics"], input=body, capture_output=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_healthz_ok_and_status_json(server) -> None:
    """/healthz answers 200 when Redis is reachable and nothing is stuck; /status is JSON."""
    status, body = call(server[0] + "/healthz")
    assert status == 200 and json.loads(body)["healthy"] is True
    status, body = call(server[0] + "/status")
    doc = json.loads(body)
    assert status == 200 and doc["schema"] == 1
    assert set(doc["queues"]) == {"discover", "fetch", "process"}
    assert doc["sources"][0]["name"] == "example" and doc["sources"][0]["stale"] is True


def test_healthz_unhealthy_when_queue_is_not_consumed(server, r: redis.Redis) -> None:
    """Work waiting in a queue with no consumption for the window makes /healthz answer 503."""
    base, _, deps = server
    r.set(deps.keys.started(), 0)
    r.lpush("fetch", "{}")
    try:
        status, body = call(base + "/healthz")
    finally:
        r.delete("fetch")
    assert status == 503 and "fetch" in json.loads(body)["reason"]


def test_reingest_auth(server) -> None:
    """POST /reingest: wrong token 401, malformed JSON 400, good request 202 and enqueued."""
    base, enqueued, _ = server
    body = json.dumps({"urls": ["https://news.example.com/a?utm_source=x"], "force": True}).encode()
    assert call(base + "/reingest", body, {"Authorization": "Bearer nope"})[0] == 401
    assert call(base + "/reingest", body)[0] == 401
    status, out = call(base + "/reingest", b"{not json", {"Authorization": "Bearer " + TOKEN})
    assert status == 400 and b"malformed JSON" in out
    status, out = call(base + "/reingest", json.dumps({"source": "nope"}).encode(),
                       {"Authorization": "Bearer " + TOKEN})
    assert status == 400 and b"known sources: example" in out
    status, out = call(base + "/reingest", body, {"Authorization": "Bearer " + TOKEN})
    assert status == 202 and json.loads(out)["count"] == 1
    assert enqueued == [({"url": "https://news.example.com/a", "source": "example", "title": None,
                          "published": None}, True)]


def test_reingest_without_token_configured_is_forbidden(r: redis.Redis, redis_url: str, prefix: str) -> None:
    """No WIRE_ADMIN_TOKEN: POST /reingest answers 403 whatever the request says."""
    deps = Deps.create(test_settings(redis_url, prefix), parse_sources(SOURCES, "s.yaml"), client=r)
    httpd = serve(deps, "127.0.0.1", 0, lambda c, f: None, lambda s: None)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        status, _ = call(f"http://127.0.0.1:{httpd.server_address[1]}/reingest", b"{}",
                         {"Authorization": "Bearer anything"})
    finally:
        httpd.shutdown()
        httpd.server_close()
    assert status == 403


def test_server_survives_a_flood_of_bad_requests(server) -> None:
    """1,000 bad requests (bad JSON, wrong tokens, unknown paths) leave the server answering."""
    base, _, _ = server
    for i in range(1000):
        kind = i % 4
        if kind == 0:
            call(base + "/reingest", b"\xff\xfe{", {"Authorization": "Bearer " + TOKEN})
        elif kind == 1:
            call(base + "/reingest", b"{}", {"Authorization": "Bearer " + "x" * 500})
        elif kind == 2:
            call(base + "/nope")
        else:
            call(base + "/reingest", b"[1,2]", {"Authorization": "Bearer " + TOKEN})
    assert call(base + "/healthz")[0] == 200


def test_queue_depth_counts_every_priority_list(server, r: redis.Redis) -> None:
    """wire_queue_length sums the base list and Celery's priority sub-lists of a queue."""
    base, _, _ = server
    r.lpush("process", "{}", "{}")
    r.lpush("process\x06\x163", "{}")
    r.lpush("process\x06\x169", "{}")
    try:
        _, body = call(base + "/metrics")
    finally:
        r.delete("process", "process\x06\x163", "process\x06\x169")
    assert 'wire_queue_length{queue="process"} 4.0' in body.decode()


def test_healthz_unhealthy_when_redis_is_down(redis_url: str, prefix: str) -> None:
    """/healthz answers 503 naming Redis when Redis does not answer."""
    from worker.ops.redis_server import free_port

    dead = redis.Redis(port=free_port(), socket_connect_timeout=0.5, socket_timeout=0.5)
    deps = Deps.create(test_settings(redis_url, prefix), parse_sources(SOURCES, "s.yaml"), client=dead)
    httpd = serve(deps, "127.0.0.1", 0, lambda c, f: None, lambda s: None)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        status, body = call(f"http://127.0.0.1:{httpd.server_address[1]}/healthz")
        metrics_status, _ = call(f"http://127.0.0.1:{httpd.server_address[1]}/metrics")
    finally:
        httpd.shutdown()
        httpd.server_close()
    assert status == 503 and "redis unreachable" in json.loads(body)["reason"]
    assert metrics_status == 503
