"""End to end: a real Celery worker and beat (subprocesses) against real Redis and
the loopback fixture sites. Waits with deadlines, never fixed sleeps."""

from __future__ import annotations

import inspect
import json
from pathlib import Path

import pytest
import redis

from tests.support.cluster import Cluster
from tests.support.helpers import wait_for
from tests.support.loopback import SiteServer
from tests.support.sites import news_site, use_site
from worker.fetch.politeness import Politeness
from worker.keys import Keys
from worker.settings import Settings

pytestmark = pytest.mark.slow


def test_worker_and_beat_publish_each_story_exactly_once(cluster: Cluster, cluster_env: dict[str, str],
                                                         prefix: str, site_server) -> None:
    """Beat schedules discovery, the worker fetches and processes: 3 stories, each once, nothing lost."""
    client = redis.Redis.from_url(cluster_env["WIRE_REDIS_URL"])
    keys = Keys.for_prefix(prefix)
    cluster.start("worker", "worker", "--queues", "discover,fetch,process", "--pool", "threads",
                  "--concurrency", "4")
    cluster.start("beat", "beat")

    def settled() -> bool:
        stats = {k.decode(): int(float(v)) for k, v in client.hgetall(keys.stats()).items()}
        # 8 candidates: 3 published, 3 duplicates, a 404 and a robots.txt denial
        return stats.get("published", 0) + stats.get("duplicates", 0) + stats.get("skipped", 0) >= 8

    cluster.wait(settled, timeout=90, what="every discovered URL to be accounted for")
    entries = client.xrange(keys.items_stream)
    items = [json.loads(f[b"data"]) for _, f in entries]
    # the AP story's first copy wins; Gamma's copy carries a changed headline
    ap_titles = {"Taliban wins close consulates; Tajikistan reinforces border", "Consulates shut as Taliban advance"}
    titles = sorted(i["title"] for i in items)
    assert len(titles) == 3 and len(set(titles) & ap_titles) == 1, titles
    assert {"Harbor bridge reopens after two years of repairs",
            "Late frost wipes out half of valley's cherry harvest"} <= set(titles)
    assert len({i["story_id"] for i in items}) == 3
    stats = {k.decode(): int(float(v)) for k, v in client.hgetall(keys.stats()).items()}
    assert stats["published"] == 3 and stats["duplicates"] == 3 and stats["skipped"] == 2, stats
    assert client.xlen(keys.dead_stream) == 0
    # the flaky page answered 500 twice, then 200: published once, on the last of its WIRE_MAX_ATTEMPTS (3)
    assert any(i["title"].startswith("Late frost") for i in items)
    assert len(site_server[0].requests("gamma", "/news/frost-harvest.html")) == Settings().max_attempts


def test_page_failing_every_time_is_dead_lettered_after_its_retries(cluster: Cluster, cluster_env: dict[str, str],
                                                                   prefix: str, site_server, tmp_path: Path) -> None:
    """A page answering 500 on every attempt ends in wire:dead with stage, reason and URL, after
    WIRE_MAX_ATTEMPTS (3) tries."""
    server, sites = site_server
    broken = server.add("broken", "127.0.0.7")
    broken.routes["/robots.txt"] = (404, {}, "")
    broken.routes["/feed"] = (200, {"Content-Type": "application/rss+xml"},
                              f'<rss version="2.0"><channel><item><link>{broken.base}/down</link></item>'
                              f"</channel></rss>")
    broken.routes["/down"] = (500, {"Content-Type": "text/html"}, "down")
    sources = Path(cluster_env["WIRE_SOURCES"])
    sources.write_text(f"sources:\n- name: broken\n  feeds: ['{broken.base}/feed']\n  interval: 1h\n  rate: 20\n")
    client = redis.Redis.from_url(cluster_env["WIRE_REDIS_URL"])
    keys = Keys.for_prefix(prefix)
    cluster.start("worker", "worker", "--queues", "discover,fetch,process", "--pool", "threads",
                  "--concurrency", "2")
    cluster.start("beat", "beat")
    cluster.wait(lambda: client.xlen(keys.dead_stream) >= 1, timeout=90, what="a dead letter")
    (entry_id, fields), = client.xrange(keys.dead_stream)
    assert fields[b"stage"] == b"fetch" and fields[b"reason"] == b"http_500"
    assert fields[b"url"] == f"{broken.base}/down".encode()
    attempts = Settings().max_attempts
    assert fields[b"attempts"] == str(attempts).encode()
    assert len(server.requests("broken", "/down")) == attempts
    assert client.xlen(keys.items_stream) == 0


def test_a_batch_near_its_time_limit_hands_the_rest_on(cluster: Cluster, cluster_env: dict[str, str],
                                                       prefix: str, tmp_path: Path) -> None:
    """At the shipped time limit (soft limit 102 s) a fetch batch may not start a fetch that could outlast
    half its soft limit (a fetch may take up to the politeness wait plus WIRE_FETCH_TIMEOUT, 10 + 20 s): on
    a host paced at one request per 4 s (the source's `rate: 0.25`), a batch of 16 URLs fetches what fits
    in its first 21 s and hands the rest on as a new task, again and again. Every story is still published
    exactly once, and no task reaches its time limit."""
    shipped = Settings()
    half = shipped.soft_time_limit / 2
    per_fetch = inspect.signature(Politeness).parameters["max_wait"].default + shipped.fetch_timeout
    server = SiteServer()
    n = shipped.fetch_batch  # one discovery: one batch of every URL
    site = news_site(server, n, address="127.0.0.17")
    use_site(cluster_env, site, rate=0.25)
    client = redis.Redis.from_url(cluster_env["WIRE_REDIS_URL"])
    keys = Keys.for_prefix(prefix)
    try:
        cluster.start("worker", "worker", "--queues", "discover,fetch,process", "--pool", "threads",
                      "--concurrency", "2")
        cluster.start("beat", "beat")
        cluster.wait(lambda: client.xlen(keys.items_stream) >= n, timeout=100, what=f"all {n} stories")
        wait_for(lambda: client.hlen("unacked") == 0 and client.llen("fetch") == 0, timeout=30,
                 what="the queues to drain")
        items = [json.loads(f[b"data"]) for _, f in client.xrange(keys.items_stream)]
        assert sorted(i["canonical_url"] for i in items) == sorted(f"{site.base}/news/story-{i}.html" for i in range(n))
        lines = [json.loads(line) for line in (tmp_path / "worker.log").read_text().splitlines()
                 if line.startswith("{")]
        handed = [h for h in lines if h.get("event", "").startswith("batch handed on") and h["stage"] == "fetch"]
        assert handed and all(h["event"] == "batch handed on: time limit near" for h in handed), handed
        # each task fetched what fits in half its soft limit, then handed on the rest
        sizes = [n] + [h["items"] for h in handed]
        fetched = [a - b for a, b in zip(sizes, sizes[1:], strict=False)]
        assert all(k > 1 for k in fetched), sizes
        # and it handed on late enough to have used its time, early enough to be safe: 21-51 s after it was
        # enqueued (by the discovery, then by the task before it)
        discovered = next(_epoch(line["timestamp"]) for line in lines if line.get("event") == "discovered")
        began = [discovered] + [_epoch(h["timestamp"]) for h in handed[:-1]]
        ran = [_epoch(h["timestamp"]) - start for start, h in zip(began, handed, strict=True)]
        assert all(half - per_fetch - 1 <= t < half for t in ran), (ran, half, per_fetch)  # the discovery logs after it enqueued
        page_times = [r.time for r in server.requests(site.name) if r.path.startswith("/news/")]
        assert client.xlen(keys.dead_stream) == 0
        assert "SoftTimeLimitExceeded" not in (tmp_path / "worker.log").read_text()
        print(f"batch sizes {sizes}; hand-ons {', '.join(f'{t:.1f}s' for t in ran)} after each task was enqueued; "
              f"pages requested over {max(page_times) - min(page_times):.0f}s")
    finally:
        server.stop()


def _epoch(iso: str) -> float:
    """A log line's ISO-8601 UTC timestamp as seconds since the epoch."""
    from datetime import datetime

    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()
