"""One wall-clock deadline over the whole exchange, at the SHIPPED default (WIRE_FETCH_TIMEOUT unset):
servers that drip header bytes, body bytes or slow redirects are cut off at the deadline, and dripping
hosts hold a real fetch worker's threads no longer than the deadline implies.

Run with `-s` to see the measured times.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis
from celery import Celery

from tests.support.cluster import Cluster
from tests.support.env import wire_env
from tests.support.helpers import test_settings
from tests.support.loopback import HTML, Site, SiteServer, body_drip, header_drip, redirect_drip
from worker.errors import HostPaused, TransientFetchError
from worker.fetch.fetcher import Fetcher
from worker.fetch.http import Limits, get
from worker.keys import Keys
from worker.ops.redis_server import RedisProcess
from worker.queue.app import celery_config
from worker.settings import Settings

SHIPPED = Settings.from_env({}).fetch_timeout  # the deadline operators get: nothing here shortens it
MARGIN = 2.0  # seconds past the deadline a cut-off fetch may take to return (a loaded, shared machine)
DRIP_FOR = 45.0  # how long a drip server keeps dripping: more than twice the deadline


def test_every_drip_ends_at_the_shipped_deadline() -> None:
    """Dripping headers, a body (with or without a length) or slow redirect hops: each fetch ends at the deadline.

    The four run at once (one watchdog serves every fetch of a process), each from its own thread.
    """
    limits = Limits(allow_private=True, deadline=SHIPPED)
    assert SHIPPED == 20.0
    cases = {"header": "/page", "body": "/page", "body-close": "/page", "redirects": "/hop/0"}
    stop = threading.Event()
    server = SiteServer()
    sites = {mode: server.add(mode, f"127.0.0.{40 + i}") for i, mode in enumerate(cases)}
    sites["header"].routes["/page"] = header_drip(stop, lasting=DRIP_FOR)
    sites["body"].routes["/page"] = body_drip(stop, length=100_000, lasting=DRIP_FOR)
    sites["body-close"].routes["/page"] = body_drip(stop, lasting=DRIP_FOR)
    for hop in range(10):  # each /hop/N drips its headers for 8 s, then redirects to /hop/N+1
        sites["redirects"].routes[f"/hop/{hop}"] = redirect_drip(stop, f"/hop/{hop + 1}", hold=8.0)
    results: dict[str, tuple[float, BaseException | None]] = {}

    def fetch(mode: str) -> None:
        started = time.monotonic()
        try:
            get(sites[mode].base + cases[mode], user_agent="t", limits=limits)
            error: BaseException | None = None
        except BaseException as exc:  # recorded for the assertions below
            error = exc
        results[mode] = (time.monotonic() - started, error)

    threads = [threading.Thread(target=fetch, args=(mode,)) for mode in cases]
    for t in threads:
        t.start()
    for t in threads:
        t.join(DRIP_FOR + 10)
    stop.set()
    server.stop()
    for mode, (took, error) in results.items():
        print(f"\n{mode}: cut off after {took:.2f}s (deadline {SHIPPED:g}s): {error}")
    assert sorted(results) == sorted(cases)
    for mode, (took, error) in results.items():
        assert isinstance(error, TransientFetchError) and error.reason == "timeout", (mode, error)
        assert SHIPPED - 0.5 <= took <= SHIPPED + MARGIN, (mode, took)
    assert [r.path for r in server.requests("redirects")] == ["/hop/0", "/hop/1", "/hop/2"]  # the third hop was cut


def test_a_hops_robots_txt_ends_by_the_pages_deadline(r: redis.Redis, redis_url: str, prefix: str) -> None:
    """A page that drips 12 s, then redirects to a host whose robots.txt drips: the fetch ends at the page's
    deadline (robots.txt of a hop is part of the exchange), and that robots.txt is not recorded as
    unavailable (the page ran out of time, not the host)."""
    stop = threading.Event()
    server = SiteServer()
    first, second = server.add("first", "127.0.0.71"), server.add("second", "127.0.0.72")
    first.routes["/robots.txt"] = (404, HTML, "")
    first.routes["/page"] = redirect_drip(stop, second.base + "/story", hold=12.0)
    second.routes["/robots.txt"] = header_drip(stop, lasting=DRIP_FOR)
    fetcher = Fetcher(r, Keys.for_prefix(prefix), test_settings(redis_url, prefix))
    assert fetcher.limits.deadline == SHIPPED
    try:
        with pytest.raises(TransientFetchError) as info:
            fetcher.fetch(first.base + "/page")
        took = time.time() - server.requests("first", "/page")[0].time  # the exchange: from the page's request
        print(f"\nredirect after 12 s to a dripping robots.txt: cut off after {took:.2f}s (deadline {SHIPPED:g}s)")
        assert info.value.reason == "timeout"
        assert took <= SHIPPED + MARGIN
        assert server.requests("second", "/robots.txt") and not server.requests("second", "/story")
        assert r.get(Keys.for_prefix(prefix).robots(second.base)) is None
    finally:
        stop.set()
        server.stop()


def test_a_hops_pacing_wait_past_the_deadline_parks(r: redis.Redis, redis_url: str, prefix: str) -> None:
    """A page that drips 17 s, then redirects on its own host, paced at one request per 25 s: the hop's
    turn (8 s on) is past the deadline (3 s on), so the URL is parked for the slot at once instead of the
    fetch sleeping past its deadline."""
    stop = threading.Event()
    server = SiteServer()
    site = server.add("site", "127.0.0.73")
    site.routes["/page"] = redirect_drip(stop, site.base + "/next", hold=17.0)
    site.routes["/next"] = (200, HTML, "<html><body><p>story</p></body></html>")
    keys = Keys.for_prefix(prefix)
    r.set(keys.robots(site.base), json.dumps({"state": "allow_all", "status": 404}), ex=600)  # read already
    fetcher = Fetcher(r, keys, test_settings(redis_url, prefix))
    started = time.monotonic()
    try:
        with pytest.raises(HostPaused) as info:
            fetcher.fetch(site.base + "/page", rate=1 / 25)
        took = time.monotonic() - started
        print(f"\nsame-host hop paced 25 s after a 17 s drip: parked after {took:.2f}s for "
              f"{info.value.retry_after:.1f}s (deadline {SHIPPED:g}s)")
        assert info.value.reason == "host_busy"
        assert took <= SHIPPED
        assert info.value.retry_after is not None and 5 <= info.value.retry_after <= 10
        assert not server.requests("site", "/next")
    finally:
        stop.set()
        server.stop()


# ----------------------------------------------------------------------------- a real fetch worker

@dataclass
class Drips:
    """16 header-drip sites of one server: robots.txt is a 404, /page and /page0 to /page15 drip."""

    server: SiteServer
    sites: list[Site]
    stop: threading.Event  # ends every drip at once


@pytest.fixture
def drips() -> Iterator[Drips]:
    stop = threading.Event()
    server = SiteServer()
    sites = [server.add(f"drip{i}", f"127.0.0.{50 + i}") for i in range(16)]
    for site in sites:
        site.routes["/robots.txt"] = (404, HTML, "")
        for path in ["/page", *(f"/page{i}" for i in range(16))]:
            site.routes[path] = header_drip(stop, lasting=DRIP_FOR)
    yield Drips(server, sites, stop)
    stop.set()
    server.stop()


@pytest.mark.slow
@pytest.mark.parametrize("queued", ["tasks", "batch"])
def test_dripping_urls_do_not_stall_an_honest_host(drips: Drips, redis_server: RedisProcess,
                                                   tmp_path: Path, queued: str) -> None:
    """16 header-drip URLs queued before an honest page of another host, on a worker at shipped defaults
    (8 fetch threads, 20 s deadline). As 16 tasks on 16 hosts they hold the eight threads for two rounds
    of deadlines at most; as one batch on one host, the host's other URLs are handed on to a task of their
    own after its first deadline and the honest page behind them in the same batch waits one deadline."""
    site = SiteServer()
    honest = site.add("honest", "127.0.0.70")
    honest.routes["/robots.txt"] = (404, HTML, "")
    honest.routes["/story"] = (200, HTML, "<html><body><p>an honest story</p></body></html>")
    honest.routes["/next"] = honest.routes["/story"]
    prefix = f"d{uuid.uuid4().hex[:8]}"
    url = f"redis://127.0.0.1:{redis_server.port}/11"
    redis.Redis.from_url(url).flushdb()
    sources = tmp_path / "sources.yaml"
    sources.write_text(f"sources:\n- name: drip\n  feeds: ['{drips.sites[0].base}/feed']\n"
                       f"- name: honest\n  feeds: ['{honest.base}/feed']\n")
    env = wire_env(redis_url=url, key_prefix=prefix, sources=sources, allow_private_addresses=1, log_format="json",
                   data_dir=tmp_path / "data")
    settings = Settings.from_env(env)
    assert (settings.fetch_timeout, settings.fetch_concurrency, settings.fetch_batch) == (SHIPPED, 8, 16)
    app = Celery("deadline-test", set_as_current=False)
    app.conf.update(celery_config(settings))
    cluster = Cluster(env, tmp_path)
    honest_next = {"url": honest.base + "/next", "source": "honest"}
    try:
        cluster.start("worker", "worker", "--queues", "fetch", "--pool", "threads",
                      "--concurrency", str(settings.fetch_concurrency))
        # the worker is up when a first honest page comes through
        app.send_task("wire.fetch", args=[{"url": honest.base + "/story", "source": "honest"}], queue="fetch")
        cluster.wait(lambda: site.requests("honest", "/story"), timeout=60, what="the worker to fetch")
        started = time.time()
        if queued == "tasks":  # 16 tasks, 16 hosts: every thread busy
            for drip in drips.sites:
                app.send_task("wire.fetch", args=[{"url": drip.base + "/page", "source": "drip"}], queue="fetch")
            app.send_task("wire.fetch", args=[honest_next], queue="fetch")
            limit = 2 * SHIPPED + 15.0  # two rounds of eight threads, plus a worker's own latency
        else:  # one batch (WIRE_FETCH_BATCH) of one host's drips, the honest page last in it
            batch = [{"url": f"{drips.sites[0].base}/page{i}", "source": "drip"} for i in range(16)]
            app.send_task("wire.fetch", args=[[*batch, honest_next]], queue="fetch")
            limit = SHIPPED + 15.0
        cluster.wait(lambda: site.requests("honest", "/next"), timeout=limit, what="the honest page")
        waited = site.requests("honest", "/next")[0].time - started
        begun = sorted(round(r.time - started, 1) for r in drips.server.requests() if r.path != "/robots.txt")
        print(f"\n{queued}: honest page fetched {waited:.1f}s after the 16 drips were queued; "
              f"drip requests began at {begun}")
        assert waited <= limit
    finally:
        drips.stop.set()  # the drips end at once: the worker stops without waiting out their deadlines
        cluster.stop()
        app.close()
        site.stop()
