"""End to end: a real Celery worker and beat (subprocesses) against real Redis and
the loopback fixture sites. Waits with deadlines, never fixed sleeps."""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis

from tests.helpers import wait_for
from tests.sites import SiteServer, sources_yaml, syndication_sites
from worker.keys import Keys
from worker.redis_server import RedisProcess

ROOT = Path(__file__).resolve().parents[1]
_db = itertools.count(1)

pytestmark = pytest.mark.slow


class Cluster:
    """Worker processes sharing one environment; stopped (process groups) at teardown."""

    def __init__(self, env: dict[str, str], log_dir: Path) -> None:
        self.env = env
        self.log_dir = log_dir
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self, name: str, *args: str) -> subprocess.Popen[bytes]:
        log = open(self.log_dir / f"{name}.log", "ab")  # noqa: SIM115 - closed with the process
        proc = subprocess.Popen([sys.executable, "-m", "worker.cli", *args], env=self.env, cwd=ROOT,
                                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        self.procs.append(proc)
        return proc

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()

    def wait(self, predicate: Callable[[], object], timeout: float, what: str) -> object:
        """`wait_for`, printing the processes' logs when it times out."""
        try:
            return wait_for(predicate, timeout=timeout, what=what)
        except AssertionError:
            print(self.logs())
            raise

    def logs(self) -> str:
        return "\n".join(f"--- {p.name}\n{p.read_text(errors='replace')[-3000:]}" for p in self.log_dir.glob("*.log"))


@pytest.fixture
def site_server() -> Iterator[tuple[SiteServer, dict]]:
    server = SiteServer()
    yield server, syndication_sites(server)
    server.stop()


@pytest.fixture
def cluster_env(redis_server: RedisProcess, prefix: str, tmp_path: Path, site_server) -> dict[str, str]:
    db = next(_db) % 16 or 1
    url = f"redis://127.0.0.1:{redis_server.port}/{db}"
    redis.Redis.from_url(url).flushdb()  # our own throwaway server: this DB belongs to this test
    _, sites = site_server
    sources = tmp_path / "sources.yaml"
    sources.write_text(sources_yaml(sites).replace("ROUTE_STREAM", f"{prefix}:items:ap"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("WIRE_")}
    env.update({
        "WIRE_REDIS_URL": url,
        "WIRE_KEY_PREFIX": prefix,
        "WIRE_SOURCES": str(sources),
        "WIRE_ALLOW_PRIVATE_ADDRESSES": "true",
        "WIRE_LOG_FORMAT": "json",
        "WIRE_DATA_DIR": str(tmp_path / "data"),
        "WIRE_FETCH_TIMEOUT": "5",
        "WIRE_MAX_ATTEMPTS": "4",
    })
    return env


@pytest.fixture
def cluster(cluster_env: dict[str, str], tmp_path: Path) -> Iterator[Cluster]:
    c = Cluster(cluster_env, tmp_path)
    yield c
    c.stop()


def test_worker_and_beat_publish_each_story_exactly_once(cluster: Cluster, cluster_env: dict[str, str],
                                                         prefix: str) -> None:
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
    # the flaky page answered 500 twice, then 200: fetched three times, published once
    assert any(i["title"].startswith("Late frost") for i in items)


def test_page_failing_every_time_is_dead_lettered_after_its_retries(cluster: Cluster, cluster_env: dict[str, str],
                                                                   prefix: str, site_server, tmp_path: Path) -> None:
    """A page answering 500 on every attempt ends in wire:dead with stage, reason and URL, after 4 tries."""
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
    assert fields[b"attempts"] == b"4"
    assert len(server.requests_to("broken", "/down")) == 4
    assert client.xlen(keys.items_stream) == 0


def test_a_batch_near_its_time_limit_hands_the_rest_on(cluster: Cluster, cluster_env: dict[str, str],
                                                       prefix: str, tmp_path: Path) -> None:
    """With WIRE_TASK_TIME_LIMIT=5 a fetch batch may not start a fetch that could outlast half its soft
    limit (a fetch may take up to the politeness wait plus WIRE_FETCH_TIMEOUT): after the first page it
    hands the rest on as a new task, again and again. Every story is still published exactly once."""
    from tests.test_ops_e2e import news_site, use_site

    server = SiteServer()
    n = 6
    site = news_site(server, n, delay=0.2, address="127.0.0.17")
    use_site(cluster_env, site)
    cluster.env = {**cluster_env, "WIRE_TASK_TIME_LIMIT": "5"}  # the limit under test, not a fault's shortcut
    client = redis.Redis.from_url(cluster_env["WIRE_REDIS_URL"])
    keys = Keys.for_prefix(prefix)
    try:
        cluster.start("worker", "worker", "--queues", "discover,fetch,process", "--pool", "threads",
                      "--concurrency", "2")
        cluster.start("beat", "beat")
        cluster.wait(lambda: client.xlen(keys.items_stream) >= n, timeout=90, what=f"all {n} stories")
        wait_for(lambda: client.hlen("unacked") == 0 and client.llen("fetch") == 0, timeout=30,
                 what="the queues to drain")
        items = [json.loads(f[b"data"]) for _, f in client.xrange(keys.items_stream)]
        assert sorted(i["canonical_url"] for i in items) == sorted(f"{site.base}/news/story-{i}.html" for i in range(n))
        handed = [json.loads(line) for line in (tmp_path / "worker.log").read_text().splitlines()
                  if "batch handed on" in line]
        # 6 URLs in one batch: each fetch task fetches one page and hands on the rest (5, 4, 3, 2, 1)
        assert [h["items"] for h in handed if h["stage"] == "fetch"] == [5, 4, 3, 2, 1], handed
        assert client.xlen(keys.dead_stream) == 0
    finally:
        server.stop()
