"""The audit's attack against a real worker: a feed on the allowed "public" address (WIRE_ALLOW_ADDRESSES)
lists honest stories and URLs that redirect to an internal server on another loopback address. The
honest stories are published; the internal server sees no request; each hostile URL ends as a skip."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
import redis
from celery import Celery

from tests.support.cluster import Cluster
from tests.support.env import wire_env
from tests.support.faultnet import article_page, rss
from tests.support.loopback import HTML, RSS, SiteServer
from worker.keys import Keys
from worker.metrics import counter_totals
from worker.ops.redis_server import RedisProcess
from worker.queue.app import celery_config
from worker.settings import Settings

pytestmark = pytest.mark.slow


def test_a_worker_never_reaches_the_internal_address(redis_server: RedisProcess, tmp_path: Path) -> None:
    """Backslash, userinfo, numeric-spelling and IPv6 redirects to 127.0.0.3: refused; honest stories published."""
    server = SiteServer()
    public = server.add("public", "127.0.0.2")
    internal = server.add("internal", "127.0.0.3")
    p = internal.server.server_address[1]  # type: ignore[union-attr]
    internal.routes["/robots.txt"] = (404, HTML, "")
    internal.routes["/internal/report"] = (200, HTML, article_page(901, "internal"))
    public.routes["/robots.txt"] = (200, {"Content-Type": "text/plain"}, "User-agent: *\nAllow: /\n")
    hostile = {
        "/bs": f"http://127.0.0.3:{p}\\@8.8.8.8/../../internal/report",  # the audit's redirect
        "/userinfo": f"http://127.0.0.2:{public.server.server_address[1]}@127.0.0.3:{p}/internal/report",  # type: ignore[union-attr]
        "/decimal": f"http://2130706435:{p}/internal/report",
        "/hex": f"http://0x7f.0.0.3:{p}/internal/report",
        "/mapped": f"http://[::ffff:127.0.0.3]:{p}/internal/report",
        "/direct": f"http://127.0.0.3:{p}/internal/report",
    }
    for path, location in hostile.items():
        public.routes[path] = (302, {"Location": location}, "")
    for i in (1, 2):
        public.routes[f"/story/{i}"] = (200, HTML, article_page(100 + i, "public"))
    public.routes["/feed.xml"] = (200, RSS, rss(public.base, ["/story/1", *hostile, "/story/2"]))
    prefix = f"g{uuid.uuid4().hex[:8]}"
    url = f"redis://127.0.0.1:{redis_server.port}/13"
    client = redis.Redis.from_url(url)
    client.flushdb()
    sources = tmp_path / "sources.yaml"
    sources.write_text(f"sources:\n- name: public\n  feeds: ['{public.base}/feed.xml']\n  rate: 50\n")
    env = wire_env(redis_url=url, key_prefix=prefix, sources=sources, allow_addresses="127.0.0.2/32",
                   log_format="json", data_dir=tmp_path / "data")
    settings = Settings.from_env(env)
    assert not settings.allow_private_addresses
    app = Celery("guard-test", set_as_current=False)
    app.conf.update(celery_config(settings))
    cluster = Cluster(env, tmp_path)
    keys = Keys.for_prefix(prefix)

    def totals(name: str) -> dict[str, float]:
        return {dict(labels).get("reason", "-"): v for labels, v in counter_totals(client, keys.metrics(), name).items()}

    try:
        cluster.start("worker", "worker", "--queues", "discover,fetch,process", "--pool", "threads",
                      "--concurrency", "2")
        app.send_task("wire.discover", args=["public"], queue="discover")
        cluster.wait(lambda: sum(totals("wire_items_published_total").values()) >= 2, timeout=90,
                     what="the two honest stories")
        cluster.wait(lambda: sum(totals("wire_skipped_total").values()) >= len(hostile), timeout=30,
                     what="every hostile URL to end")
        skipped = totals("wire_skipped_total")
        print(f"\nskipped: {skipped}")
        assert set(skipped) <= {"bad_url", "private_address"} and sum(skipped.values()) == len(hostile)
        assert sum(totals("wire_items_published_total").values()) == 2
        assert server.requests("internal") == []
        assert sorted(r.path for r in server.requests("public") if r.path in hostile) == sorted(hostile)
    finally:
        cluster.stop()
        app.close()
        server.stop()
        client.close()
