"""Redis faults with real processes: workers started before Redis wait and then consume."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import redis

from tests.helpers import wait_for
from tests.sites import HTML, STORIES, SiteServer, jsonld_page
from tests.test_e2e import Cluster
from worker.keys import Keys
from worker.redis_server import free_port, start_redis


def worker_env(redis_url: str, prefix: str, sources: Path, tmp_path: Path, **extra: str) -> dict[str, str]:
    """The environment of a worker process under test (no inherited WIRE_ variables)."""
    return {"PATH": "/usr/bin:/bin", "WIRE_REDIS_URL": redis_url, "WIRE_KEY_PREFIX": prefix,
            "WIRE_SOURCES": str(sources), "WIRE_ALLOW_PRIVATE_ADDRESSES": "1", "WIRE_LOG_FORMAT": "json",
            "WIRE_DATA_DIR": str(tmp_path / "data"), **extra}

pytestmark = pytest.mark.slow


def test_worker_started_before_redis_waits_then_consumes(tmp_path: Path, prefix: str) -> None:
    """A worker whose Redis is down logs that it is waiting, and consumes once Redis is up."""
    server = SiteServer()
    site = server.add("late", "127.0.0.10")
    site.routes["/robots.txt"] = (404, {}, "")
    site.routes["/story"] = (200, HTML, jsonld_page(STORIES["orchard-frost-harvest"], "x"))
    site.routes["/feed"] = (200, {"Content-Type": "application/rss+xml"},
                            f'<rss version="2.0"><channel><item><link>{site.base}/story</link></item></channel></rss>')
    sources = tmp_path / "sources.yaml"
    sources.write_text(f"sources:\n- name: late\n  feeds: ['{site.base}/feed']\n  interval: 1h\n  rate: 20\n")
    port = free_port()
    env = worker_env(f"redis://127.0.0.1:{port}/0", prefix, sources, tmp_path)
    cluster = Cluster(env, tmp_path)
    redis_proc = None
    try:
        cluster.start("worker", "worker", "--queues", "discover,fetch,process", "--pool", "threads",
                      "--concurrency", "2")
        cluster.start("beat", "beat")
        wait_for(lambda: "waiting for redis" in (tmp_path / "worker.log").read_text(errors="replace"),
                 timeout=30, what="the worker to say it waits for Redis")
        redis_proc = start_redis(tmp_path / "redis", port=port, appendonly=True)
        client = redis.Redis(port=port)
        keys = Keys.for_prefix(prefix)
        cluster.wait(lambda: client.xlen(keys.items_stream) == 1, timeout=60, what="the story to be published")
        item = json.loads(client.xrange(keys.items_stream)[0][1][b"data"])
        assert item["title"].startswith("Late frost")
    finally:
        cluster.stop()
        if redis_proc:
            redis_proc.stop()
        server.stop()


def test_redis_restart_mid_run_loses_nothing(tmp_path: Path, prefix: str) -> None:
    """Redis (AOF on) restarted mid-batch: workers reconnect, every story is published exactly once."""
    from tests.test_ops_e2e import news_site

    server = SiteServer()
    n = 16
    site = news_site(server, n, delay=0.4, address="127.0.0.11")
    sources = tmp_path / "sources.yaml"
    sources.write_text(f"sources:\n- name: news\n  sitemaps: ['{site.base}/sitemap.xml']\n  interval: 1h\n  rate: 50\n")
    port = free_port()
    redis_proc = start_redis(tmp_path / "redis", port=port, appendonly=True)
    env = worker_env(f"redis://127.0.0.1:{port}/0", prefix, sources, tmp_path)
    cluster = Cluster(env, tmp_path)
    keys = Keys.for_prefix(prefix)
    try:
        cluster.start("worker", "worker", "--queues", "discover,fetch,process", "--pool", "threads",
                      "--concurrency", "2")
        cluster.start("beat", "beat")
        client = redis.Redis(port=port)
        wait_for(lambda: client.xlen(keys.items_stream) >= 3, timeout=60, what="the first stories")
        redis_proc.stop()
        redis_proc = start_redis(tmp_path / "redis", port=port, appendonly=True)
        client = redis.Redis(port=port)
        cluster.wait(lambda: client.xlen(keys.items_stream) >= n, timeout=150, what=f"all {n} stories")
        items = [json.loads(f[b"data"]) for _, f in client.xrange(keys.items_stream)]
        assert len(items) == n and len({i["canonical_url"] for i in items}) == n
    finally:
        cluster.stop()
        redis_proc.stop()
        server.stop()


def _children(pid: int) -> list[int]:
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                out.append(int(entry.name))
    return out


def test_poison_page_that_kills_its_worker_is_dead_lettered(tmp_path: Path, prefix: str, redis_server) -> None:
    """A page whose processing kills the prefork child every time lands in wire:dead after a bounded
    number of deliveries instead of killing workers forever."""
    import os
    import signal
    import time

    server = SiteServer()
    from tests.test_ops_e2e import unique_story

    site = server.add("poison", "127.0.0.12")
    site.routes["/robots.txt"] = (404, {}, "")
    heavy = unique_story(7)
    heavy["paragraphs"] = heavy["paragraphs"] * 2500  # ~4 MB: its processing lasts long enough to be killed
    site.routes["/story"] = (200, HTML, jsonld_page(heavy, "x"))
    site.routes["/feed"] = (200, {"Content-Type": "application/rss+xml"},
                            f'<rss version="2.0"><channel><item><link>{site.base}/story</link></item></channel></rss>')
    sources = tmp_path / "sources.yaml"
    sources.write_text(f"sources:\n- name: poison\n  feeds: ['{site.base}/feed']\n  interval: 1h\n  rate: 20\n")
    url = f"redis://127.0.0.1:{redis_server.port}/13"
    client = redis.Redis.from_url(url)
    client.flushdb()
    env = worker_env(url, prefix, sources, tmp_path, WIRE_MAX_ATTEMPTS="3")
    cluster = Cluster(env, tmp_path)
    keys = Keys.for_prefix(prefix)
    try:
        cluster.start("fetch", "worker", "--queues", "discover,fetch", "--pool", "threads", "--concurrency", "2")
        proc = cluster.start("process", "worker", "--queues", "process", "--pool", "prefork", "--concurrency", "1")
        cluster.start("beat", "beat")
        # Stand-in for a page that crashes the parser: kill the child each time a process task starts.
        kills = 0
        seen: dict[bytes, int] = {}
        deadline = time.monotonic() + 120
        while client.xlen(keys.dead_stream) == 0 and time.monotonic() < deadline:
            for key in client.scan_iter(f"{prefix}:attempts:*"):
                count = int(client.get(key) or 0)
                if count > seen.get(key, 0) and client.exists(key):
                    seen[key] = count
                    for child in _children(proc.pid):
                        os.kill(child, signal.SIGKILL)
                        kills += 1
            time.sleep(0.05)
        entries = client.xrange(keys.dead_stream)
        assert entries, cluster.logs()
        fields = entries[0][1]
        assert fields[b"stage"] == b"process" and fields[b"reason"] == b"poison"
        assert client.xlen(keys.items_stream) == 0
        # bounded: WIRE_MAX_ATTEMPTS deliveries (plus at most one kill of an idle child when the fetch task's
        # counter showed up), then dead-lettered
        assert 1 <= kills <= 5, kills
    finally:
        cluster.stop()
        server.stop()


def test_sigkilled_worker_mid_batch_loses_nothing_after_restart(tmp_path: Path, prefix: str, redis_server) -> None:
    """SIGKILL of the whole worker (main process and pool) mid-batch, then a restart: every story is in
    wire:items exactly once (unacked tasks come back after the visibility timeout, short here)."""
    import os
    import signal

    from tests.test_ops_e2e import news_site

    server = SiteServer()
    n = 12
    site = news_site(server, n, delay=1.0, address="127.0.0.13")
    sources = tmp_path / "sources.yaml"
    sources.write_text(f"sources:\n- name: news\n  sitemaps: ['{site.base}/sitemap.xml']\n  interval: 1h\n  rate: 50\n")
    url = f"redis://127.0.0.1:{redis_server.port}/12"
    client = redis.Redis.from_url(url)
    client.flushdb()
    env = worker_env(url, prefix, sources, tmp_path, WIRE_VISIBILITY_TIMEOUT="15", WIRE_TASK_TIME_LIMIT="5")
    cluster = Cluster(env, tmp_path)
    keys = Keys.for_prefix(prefix)
    try:
        worker = cluster.start("worker1", "worker", "--queues", "discover,fetch,process", "--pool", "threads",
                               "--concurrency", "3")
        cluster.start("beat", "beat")
        wait_for(lambda: len([r for r in server.requests_to(site.name) if r.path.startswith("/news/")]) >= 4,
                 timeout=60, what="fetches in flight")
        os.killpg(worker.pid, signal.SIGKILL)
        worker.wait(10)
        assert client.xlen(keys.items_stream) < n  # really interrupted
        assert client.hlen("unacked") > 0  # tasks held by the dead worker
        cluster.start("worker2", "worker", "--queues", "discover,fetch,process", "--pool", "threads",
                      "--concurrency", "3")
        cluster.wait(lambda: client.xlen(keys.items_stream) >= n, timeout=120, what=f"all {n} stories")
        wait_for(lambda: client.hlen("unacked") == 0 and client.llen("fetch") == 0, timeout=60,
                 what="the queues to drain")
        items = [json.loads(f[b"data"]) for _, f in client.xrange(keys.items_stream)]
        assert len(items) == n and len({i["canonical_url"] for i in items}) == n
    finally:
        cluster.stop()
        server.stop()
