"""Every wait wire schedules is finite and capped: a huge, infinite, non-numeric or far-future Retry-After
(on a 429, a 503 or a 500) gives at most MAX_WAIT, or the default backoff; never a park score of inf."""

from __future__ import annotations

import json
import math
import time
import uuid
from pathlib import Path

import pytest
import redis
from celery import Celery

from tests.support.cluster import Cluster
from tests.support.env import wire_env
from tests.support.helpers import test_settings
from tests.support.loopback import HTML, Raw, SiteServer
from worker.errors import HostPaused, PermanentFetchError, TransientFetchError
from worker.fetch import politeness
from worker.fetch.fetcher import Fetcher
from worker.fetch.http import Limits, get
from worker.fetch.politeness import parse_retry_after
from worker.keys import Keys, as_text
from worker.ops.redis_server import RedisProcess
from worker.queue.app import celery_config
from worker.settings import Settings

NOW = 1_700_000_000.0
CAP = "cap"  # politeness.MAX_WAIT, read when the test runs
HUGE = "9" * 400  # float(HUGE) is inf
GIANT = "9" * 5000  # int(GIANT) raises: Python refuses integer strings of over 4,300 digits
FAR = "Fri, 31 Dec 9999 23:59:59 GMT"


@pytest.mark.parametrize("value, seconds", [
    ("120", 120.0), (" 30 ", 30.0), ("0", 0.0), (HUGE, CAP), (GIANT, CAP), ("0" * 5000 + "7", 7.0),
    ("99999999", CAP), ("21600", CAP), ("21601", CAP), ("0021599", 21599.0), (FAR, CAP),
    ("Tue, 14 Nov 2023 22:14:20 GMT", 60.0), ("Mon, 01 Jan 2001 00:00:00 GMT", 0.0),
    ("²", None), ("١٢", None), ("inf", None), ("Infinity", None), ("nan", None), ("-5", None), ("1e9", None),
    ("12.5", None), ("soon", None), ("", None), (None, None),
])
def test_retry_after_is_finite_and_capped(value: str | None, seconds: float | None) -> None:
    """Delta-seconds (ASCII digits only) and HTTP dates, capped at MAX_WAIT; anything else is None (default)."""
    want = politeness.MAX_WAIT if seconds == CAP else seconds
    got = parse_retry_after(value, NOW)
    assert got == (pytest.approx(want, abs=1) if want is not None else None)
    assert got is None or (math.isfinite(got) and 0 <= got <= politeness.MAX_WAIT)


@pytest.mark.parametrize("seconds, default, want", [
    (None, 7.0, 7.0), (math.nan, 7.0, 7.0), (math.inf, 7.0, CAP), (-3.0, 7.0, 0.0), (12.0, 7.0, 12.0),
    (1e300, 7.0, CAP),
])
def test_finite_wait(seconds: float | None, default: float, want: float | str) -> None:
    """What the task layer schedules: the default for a missing or NaN wait, else clamped to [0, MAX_WAIT]."""
    assert politeness.finite_wait(seconds, default) == (politeness.MAX_WAIT if want == CAP else want)


def test_a_huge_pause_is_capped(r: redis.Redis, redis_url: str, prefix: str) -> None:
    """Pausing a host for inf (or NaN) seconds pauses it for at most MAX_WAIT instead of crashing."""
    pol = Fetcher(r, Keys.for_prefix(prefix), test_settings(redis_url, prefix)).politeness
    pol.pause("a.example", math.inf, "test")
    assert politeness.MAX_WAIT - 5 < pol.paused_for("a.example") <= politeness.MAX_WAIT
    pol.pause("b.example", math.nan, "test")
    assert pol.paused_for("b.example") <= 1


@pytest.mark.parametrize("status, header, retry_after, pauses", [
    (500, HUGE, CAP, False),
    (500, GIANT, CAP, False),
    (503, GIANT, CAP, True),
    (500, FAR, CAP, False),
    (500, "²", None, False),
    (500, "inf", None, False),
    (429, HUGE, CAP, True),
    (503, FAR, CAP, True),
    (503, "²", None, False),
])
def test_fetch_reports_a_finite_retry_after(r: redis.Redis, redis_url: str, prefix: str, status: int,
                                            header: str, retry_after: str | None, pauses: bool) -> None:
    """A loopback server's hostile Retry-After becomes a finite, capped wait (or None), on any status."""
    want = politeness.MAX_WAIT if retry_after == CAP else None
    server = SiteServer()
    site = server.add("site", "127.0.0.20")
    site.routes["/robots.txt"] = (404, HTML, "")
    site.routes["/page"] = (status, {**HTML, "Retry-After": header}, "busy")
    fetcher = Fetcher(r, Keys.for_prefix(prefix), test_settings(redis_url, prefix))
    try:
        with pytest.raises(TransientFetchError) as info:
            fetcher.fetch(site.base + "/page")
        assert info.value.retry_after == (pytest.approx(want, abs=1) if want else None)
        if pauses:
            assert politeness.MAX_WAIT - 5 < fetcher.politeness.paused_for("127.0.0.20") <= politeness.MAX_WAIT
            with pytest.raises(HostPaused) as paused:
                fetcher.fetch(site.base + "/other")
            assert paused.value.retry_after is not None and paused.value.retry_after <= politeness.MAX_WAIT
        else:
            assert fetcher.politeness.paused_for("127.0.0.20") == 0
    finally:
        server.stop()


@pytest.mark.slow
def test_a_worker_parks_with_finite_scores_and_retries_unparsable_waits(redis_server: RedisProcess,
                                                                        tmp_path: Path) -> None:
    """In a real fetch worker: a 500 or 503 asking for forever is parked until now + MAX_WAIT at most; a 500
    with `Retry-After: ²` or `inf` is retried after the default backoff (not lost, not parked forever)."""
    server = SiteServer()
    site = server.add("site", "127.0.0.21")
    busy = server.add("busy", "127.0.0.22")
    for s in (site, busy):
        s.routes["/robots.txt"] = (404, HTML, "")
    site.routes["/huge"] = (500, {**HTML, "Retry-After": HUGE}, "oops")
    site.routes["/far"] = (500, {**HTML, "Retry-After": FAR}, "oops")
    site.routes["/super"] = (500, {**HTML, "Retry-After": "²"}, "oops")
    site.routes["/inf"] = (500, {**HTML, "Retry-After": "inf"}, "oops")
    busy.routes["/page"] = (503, {**HTML, "Retry-After": HUGE}, "busy")
    prefix = f"w{uuid.uuid4().hex[:8]}"
    url = f"redis://127.0.0.1:{redis_server.port}/12"
    client = redis.Redis.from_url(url)
    client.flushdb()
    sources = tmp_path / "sources.yaml"
    sources.write_text(f"sources:\n- name: site\n  feeds: ['{site.base}/feed']\n  rate: 50\n")
    env = wire_env(redis_url=url, key_prefix=prefix, sources=sources, allow_private_addresses=1, log_format="json",
                   data_dir=tmp_path / "data")
    settings = Settings.from_env(env)
    app = Celery("waits-test", set_as_current=False)
    app.conf.update(celery_config(settings))
    cluster = Cluster(env, tmp_path)
    parked = Keys.for_prefix(prefix).parked()
    try:
        cluster.start("worker", "worker", "--queues", "fetch", "--pool", "threads", "--concurrency", "2")
        started = time.time()
        for path in ("/huge", "/far", "/super", "/inf"):
            app.send_task("wire.fetch", args=[{"url": site.base + path, "source": "site"}], queue="fetch")
        app.send_task("wire.fetch", args=[{"url": busy.base + "/page", "source": "site"}], queue="fetch")

        def parked_paths() -> dict[str, float]:
            out = {}
            for member, score in client.zrange(parked, 0, -1, withscores=True):
                candidate = json.loads(as_text(member))["candidate"]
                for c in candidate if isinstance(candidate, list) else [candidate]:
                    out[c["url"].rsplit("/", 1)[1]] = score
            return out

        cluster.wait(lambda: {"huge", "far", "page"} <= set(parked_paths()), timeout=60, what="three parked URLs")
        for path in ("/super", "/inf"):  # retried after the default backoff (1-2 s): asked again
            cluster.wait(lambda p=path: len(server.requests("site", p)) >= 2, timeout=30,
                         what=f"{path} to be retried")
        scores = parked_paths()
        print(f"\nparked until (s from now): { {k: round(v - started) for k, v in scores.items()} }")
        for path in ("huge", "far", "page"):
            assert math.isfinite(scores[path]) and scores[path] <= time.time() + politeness.MAX_WAIT + 1, scores
        assert "super" not in scores and "inf" not in scores
    finally:
        cluster.stop()
        app.close()
        server.stop()
        client.close()


@pytest.mark.parametrize("header", [GIANT, HUGE, "²"])
def test_a_robots_txt_asking_for_forever_pauses_its_host(r: redis.Redis, redis_url: str, prefix: str,
                                                         header: str) -> None:
    """robots.txt answering 503 with a Retry-After of 5,000 digits (or 400, or '²') pauses the host for a
    finite time (RFC 9309's "unavailable"), asked once: its pages are parked, none fails on the number."""
    server = SiteServer()
    site = server.add("site", "127.0.0.23")
    site.routes["/robots.txt"] = (503, {**HTML, "Retry-After": header}, "busy")
    site.routes["/page"] = (200, HTML, "<html><body><p>story</p></body></html>")
    fetcher = Fetcher(r, Keys.for_prefix(prefix), test_settings(redis_url, prefix))
    try:
        for path in ("/page", "/page2", "/page3"):
            with pytest.raises(HostPaused) as paused:
                fetcher.fetch(site.base + path)
            assert paused.value.reason == "robots_unavailable"
            assert paused.value.retry_after is not None and 1 <= paused.value.retry_after <= 3600
        assert len(server.requests("site", "/robots.txt")) == 1
        assert not server.requests("site", "/page")
    finally:
        server.stop()


@pytest.mark.parametrize("length", [GIANT, "²", "١٢", "-1"])
def test_a_content_length_that_is_no_number_is_no_error(length: str) -> None:
    """A Content-Length of digits int() refuses ('²') is no length: the page is read to the byte cap as one
    without a length, not failed with a ValueError; one of 5,000 digits is a page over the cap."""
    body = b"<html><body><p>story</p></body></html>"
    server = SiteServer()
    site = server.add("site", "127.0.0.24")
    site.routes["/page"] = Raw([b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: "
                               + length.encode() + b"\r\nConnection: close\r\n\r\n" + body], status=200)
    try:
        if length == GIANT:
            with pytest.raises(PermanentFetchError) as info:
                get(site.base + "/page", user_agent="t", limits=Limits(allow_private=True))
            assert info.value.reason == "too_large" and len(str(info.value)) < 200
            return
        resp = get(site.base + "/page", user_agent="t", limits=Limits(allow_private=True))
        assert resp.status == 200 and resp.content == body
    finally:
        server.stop()
