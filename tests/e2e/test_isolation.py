"""End to end with real workers: one bad URL never costs its neighbours, a page that expired before it
was processed is fetched again, and `wire explain` tells each URL's outcome."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from tests.support.cluster import Cluster
from tests.support.faultnet import article_page
from tests.support.loopback import HTML, RSS, Site, SiteServer
from tests.support.paths import ROOT
from worker.keys import Keys
from worker.trail import read

pytestmark = pytest.mark.slow


@pytest.fixture
def hostile() -> Iterator[tuple[SiteServer, Site]]:
    server = SiteServer()
    site = server.add("hostile", "127.0.0.61")
    site.routes["/robots.txt"] = (404, {}, "")
    site.routes["/honest-before.html"] = (200, HTML, article_page(601, "Isolation Post"))
    site.routes["/bad-location.html"] = (302, {"Location": "http://[::1"}, "")
    site.routes["/bad-retry.html"] = (503, {"Retry-After": "²", "Content-Type": "text/html"}, "busy")
    site.routes["/honest-after.html"] = (200, HTML, article_page(602, "Isolation Post"))
    paths = ["/honest-before.html", "/bad-location.html", "/bad-retry.html", "/honest-after.html"]
    items = "".join(f"<item><link>{site.base}{p}</link></item>" for p in paths)
    site.routes["/feed"] = (200, RSS, f'<rss version="2.0"><channel>{items}</channel></rss>')
    yield server, site
    server.stop()


def _explain(env: dict[str, str], url: str) -> str:
    done = subprocess.run([sys.executable, "-m", "worker.ops.cli", "explain", url], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_hostile_urls_in_a_feed_end_alone_and_are_explained(cluster: Cluster, cluster_env: dict[str, str],
                                                            prefix: str, hostile) -> None:
    """A feed lists an honest story, a URL redirecting to `http://[::1`, one answering 503 with
    `Retry-After: ²`, and another honest story, all in one fetch batch: both honest stories are
    published, each bad URL ends dead-lettered with its reason (or, where the fetcher turns the value
    into an error of its own, retried then dead-lettered, or skipped with its reason), nothing is lost,
    and after rediscovery (which finds nothing new) `wire explain` and the dead letters still tell
    what became of them."""
    server, site = hostile
    Path(cluster_env["WIRE_SOURCES"]).write_text(
        f"sources:\n- name: hostile\n  feeds: ['{site.base}/feed']\n  interval: 3s\n  rate: 20\n")
    client = redis.Redis.from_url(cluster_env["WIRE_REDIS_URL"])
    keys = Keys.for_prefix(prefix)
    bad = [f"{site.base}/bad-location.html", f"{site.base}/bad-retry.html"]
    cluster.start("worker", "worker", "--queues", "discover,fetch,process", "--pool", "threads",
                  "--concurrency", "4")
    cluster.start("beat", "beat")

    def ended(url: str) -> bool:
        events = read(client, keys, url).events
        return bool(events) and events[-1]["ev"] in ("dead", "skipped")

    cluster.wait(lambda: client.xlen(keys.items_stream) >= 2 and all(ended(u) for u in bad), timeout=90,
                 what="both honest stories published and both bad URLs ended")
    items = [json.loads(f[b"data"]) for _, f in client.xrange(keys.items_stream)]
    assert sorted(i["url"] for i in items) == [f"{site.base}/honest-after.html", f"{site.base}/honest-before.html"]
    dead = {f[b"url"].decode(): f for _, f in client.xrange(keys.dead_stream)}
    for url in bad:
        last = read(client, keys, url).events[-1]
        assert last.get("reason"), last
        if last["ev"] == "dead":
            assert dead[url][b"reason"].decode() == last["reason"] and dead[url][b"stage"] == b"fetch"
    # every URL of the feed accounted for: discovered 4, published 2, the bad two ended as recorded
    stats = {k.decode(): int(float(v)) for k, v in client.hgetall(keys.stats()).items()}
    assert stats["discovered"] == 4 and stats["published"] == 2
    assert stats.get("failed", 0) + stats.get("skipped", 0) == 2, stats

    # rediscovery finds nothing new (the bad URLs are marked seen) and hides nothing
    since = time.time()
    state = keys.source_state("hostile")
    cluster.wait(lambda: float(client.hget(state, "last_discovery") or 0) > since + 1, timeout=30,
                 what="another discovery")
    assert client.hget(state, "discovered_last") == b"0"
    assert {f[b"url"].decode() for _, f in client.xrange(keys.dead_stream)} == set(dead)
    for url in bad:
        out = _explain(cluster.env, url)
        last = read(client, keys, url).events[-1]
        assert f"path of {url}" in out and f"discovered by source hostile in the feed {site.base}/feed" in out
        assert ("dead-lettered at fetch: " + last["reason"] if last["ev"] == "dead" else last["reason"]) in out
    published = _explain(cluster.env, f"{site.base}/honest-after.html")
    assert "fetch #1: HTTP 200" in published and "published as story" in published


def test_a_page_expired_before_processing_is_fetched_again(cluster: Cluster, cluster_env: dict[str, str],
                                                           prefix: str, hostile) -> None:
    """A page fetched while no process worker runs, whose stored bytes are gone when one starts (the key
    is deleted: what a backlog older than the page TTL does), is fetched again and published, and its
    trail says so; on main it ended `skipped: page_gone`, marked seen, never fetched again."""
    server, site = hostile
    Path(cluster_env["WIRE_SOURCES"]).write_text(
        f"sources:\n- name: hostile\n  feeds: ['{site.base}/feed']\n  interval: 1h\n  rate: 20\n")
    site.routes["/feed"] = (200, RSS, f'<rss version="2.0"><channel><item><link>{site.base}/honest-before.html'
                                      "</link></item></channel></rss>")
    client = redis.Redis.from_url(cluster_env["WIRE_REDIS_URL"])
    keys = Keys.for_prefix(prefix)
    url = f"{site.base}/honest-before.html"
    cluster.start("fetcher", "worker", "--queues", "discover,fetch", "--pool", "threads", "--concurrency", "2")
    cluster.start("beat", "beat")
    pages = cluster.wait(lambda: list(client.scan_iter(match=f"{prefix}:page:*")), timeout=60,
                         what="the page stored for the process stage")
    assert client.delete(*pages) == 1  # as if it had expired in the queue
    cluster.start("processor", "worker", "--queues", "process", "--pool", "prefork", "--concurrency", "1")
    cluster.wait(lambda: client.xlen(keys.items_stream) >= 1, timeout=90, what="the story, fetched again")
    assert len(server.requests("hostile", "/honest-before.html")) == 2
    kinds = [e["ev"] for e in read(client, keys, url).events]
    assert kinds == ["discovered", "fetch", "refetch", "fetch", "published"], kinds
    assert client.xlen(keys.dead_stream) == 0
