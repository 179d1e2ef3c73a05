"""The audit's hostile web against the real `wire run`, at the shipped defaults.

`WIRE_ALLOW_ADDRESSES` allows exactly one loopback address, the "public" news
site; an "internal" server on another loopback address counts every
connection it accepts. The public site's feed lists honest stories before
and after the hostile URLs: redirects to the internal address (backslash
and userinfo tricks, and plain), a malformed `Location`, a response whose
headers drip one byte every 0.5 s, `Retry-After: ²` on a 503 and a
`Retry-After` of 10**12 s on a 500, and pages that set 32 KB of cookies;
every answer of the site sets them too, and it answers 431 to a request
carrying more than 8 KB of cookies, as real servers do.

Run with `-s` to see when the last honest story arrived and what
`wire explain` said of each hostile URL.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import redis

from tests.support.env import wire_env
from tests.support.faultnet import article_page, rss
from tests.support.helpers import wait_for
from tests.support.loopback import HTML, RSS, Raw, Resp, Route, SiteServer, header_drip
from tests.support.paths import ROOT
from tests.support.run import Run, alive, wire_cli
from worker.keys import Keys
from worker.ops.redis_server import free_port

pytestmark = pytest.mark.slow

PUBLIC, INTERNAL = "127.0.0.61", "127.0.0.62"
HONEST_BEFORE, HONEST_AFTER = 4, 4
ARRIVE_WITHIN = 90.0  # seconds from the start of `wire run` to the last honest story on the stream
DRIP_EVERY, DRIP_FOR = 0.5, 150.0  # one header byte every half second, for far longer than the deadline
FLOOD = [f"flood{i}={'c' * 4000}; Path=/" for i in range(8)]  # 32 KB of Set-Cookie on every answer
COOKIE_LIMIT = 8 * 1024  # the public site answers 431 to more Cookie than this


def _flooded(route: Route) -> Callable[[int, dict[str, str]], Resp | Raw]:
    """`route` with the cookie flood on its answer, and 431 to a request that carries the flood back."""
    def answer(count: int, req: dict[str, str]) -> Resp | Raw:
        if len(req.get("Cookie", "")) > COOKIE_LIMIT:
            return Resp(431, HTML, "<html><body>Request Header Fields Too Large</body></html>")
        got = route(count, req) if callable(route) else route
        if isinstance(got, Raw):
            return got
        resp = got if isinstance(got, Resp) else Resp(*got)
        return Resp(resp.status, {**resp.headers, "Set-Cookie": FLOOD}, resp.body, resp.length)
    return answer


@pytest.fixture
def web() -> Iterator[tuple[SiteServer, dict[str, str], list[str], threading.Event]]:
    """The two sites: (server, hostile path -> what it does, honest story paths, the drip's stop switch)."""
    server = SiteServer()
    public = server.add("public", PUBLIC)
    internal = server.add("internal", INTERNAL)
    port = internal.server.server_address[1]  # type: ignore[union-attr]
    internal.routes["/robots.txt"] = (404, HTML, "")
    internal.routes["/internal/report"] = (200, HTML, article_page(6200, "internal"))
    stop = threading.Event()

    drip = header_drip(stop, every=DRIP_EVERY, lasting=DRIP_FOR)

    hostile: dict[str, Route] = {
        "/backslash": (302, {"Location": f"http://{INTERNAL}:{port}\\@8.8.8.8/../../internal/report"}, ""),
        "/backslash-path": (302, {"Location": f"http://{INTERNAL}:{port}\\\\@{PUBLIC}/internal/report"}, ""),
        "/userinfo": (302, {"Location": f"http://{PUBLIC}@{INTERNAL}:{port}/internal/report"}, ""),
        "/plain": (302, {"Location": f"http://{INTERNAL}:{port}/internal/report"}, ""),
        "/malformed": (302, {"Location": "http://[::1"}, ""),
        "/drip": drip,
        "/odd-retry": (503, {**HTML, "Retry-After": "²"}, "<html><body>busy</body></html>"),
        "/huge-retry": (500, {**HTML, "Retry-After": str(10 ** 12)}, "<html><body>down</body></html>"),
        "/cookies/1": (200, HTML, article_page(6101, "public")),
        "/cookies/2": (200, HTML, article_page(6102, "public")),
    }
    honest = [f"/story/{i}" for i in range(HONEST_BEFORE + HONEST_AFTER)]
    routes: dict[str, Route] = {p: (200, HTML, article_page(6000 + i, "public")) for i, p in enumerate(honest)}
    routes.update(hostile)
    routes["/robots.txt"] = (200, {"Content-Type": "text/plain"}, "User-agent: *\nAllow: /\n")
    listed = [*honest[:HONEST_BEFORE], *hostile, *honest[HONEST_BEFORE:]]
    routes["/feed.xml"] = (200, RSS, rss(public.base, listed))
    public.routes.update({path: _flooded(route) for path, route in routes.items()})
    kinds = {path: path.strip("/").split("/")[0] for path in hostile}
    yield server, kinds, honest, stop
    stop.set()
    server.stop()


# What `wire explain` must say of each hostile URL, in words: the outcome, not only an exit code.
GUARD_REFUSED = "refused by the address guard"
OUTCOMES: dict[str, list[str]] = {
    "backslash": [f"{GUARD_REFUSED} (bad_url)", "refusing URL with a backslash in its host part"],
    "backslash-path": [f"{GUARD_REFUSED} (bad_url)", "refusing URL with a backslash in its host part"],
    "userinfo": [f"{GUARD_REFUSED} (bad_url)", "refusing URL with credentials (userinfo)"],
    "plain": [f"{GUARD_REFUSED} (private_address)", f"{INTERNAL} is a private or reserved address"],
    "malformed": [f"{GUARD_REFUSED} (bad_url)", "unparseable redirect target"],
    "drip": ["no HTTP answer", "(timeout: deadline exceeded", "retried after 20.0 s (timeout)"],
    "odd-retry": ["HTTP 503", "retried after", "dead-lettered at fetch: http_503"],
    "huge-retry": ["HTTP 500", "parked until"],
    "cookies": ["HTTP 200", "published as story"],
}


def test_wire_run_against_the_hostile_web(web, redis_db_url: str, prefix: str, tmp_path: Path) -> None:
    """`wire run` (shipped defaults, WIRE_ALLOW_ADDRESSES = the public site only) reading a feed of honest
    stories around hostile URLs: the internal address accepts no connection at all, every honest story is on
    the items stream once within 90 s of the start, `wire run` and its workers are still up at the end, and
    `wire explain` tells each hostile URL's outcome in words."""
    server, kinds, honest, stop = web
    public = server.sites["public"]
    sources = tmp_path / "sources.yaml"
    sources.write_text(f"sources:\n- name: public\n  feeds: ['{public.base}/feed.xml']\n")
    env = wire_env(redis_url=redis_db_url, key_prefix=prefix, sources=sources, allow_addresses=f"{PUBLIC}/32",
                   data_dir=tmp_path / "data", metrics_port=free_port())
    client = redis.Redis.from_url(redis_db_url)
    keys = Keys.for_prefix(prefix)
    started = time.time()
    run = Run(env, tmp_path / "run.log")
    try:
        run.wait_consuming(client)
        processes = set(run.family)  # the workers, beat and serve (and the pools' children)

        def published() -> dict[str, list[float]]:
            out: dict[str, list[float]] = {}
            for eid, fields in client.xrange(keys.items_stream):
                url = json.loads(fields[b"data"])["url"]
                out.setdefault(url.split("?")[0].removeprefix(public.base), []).append(
                    int(eid.split(b"-")[0]) / 1000)
            return out

        wait_for(lambda: set(honest) <= set(published()), timeout=ARRIVE_WITHIN - (time.time() - started),
                 what=f"every honest story on the stream within {ARRIVE_WITHIN:g} s; "
                      f"published {sorted(published())}\n{run.output()[-3000:]}")
        got = published()
        last = max(got[p][0] for p in honest) - started
        print(f"\nthe last honest story arrived {last:.1f} s after `wire run` started")

        # each hostile URL's outcome, as `wire explain` tells it (asked again until it has one: the drip takes
        # its attempts at the deadline)
        explained: dict[str, str] = {}
        last: dict[str, str] = {}

        def explain_all() -> bool:
            for path, kind in kinds.items():
                if path not in explained:
                    said = wire_cli(["explain", public.base + path], ROOT, env)
                    last[path] = said.stdout + said.stderr
                    if said.returncode == 0 and all(w in said.stdout for w in OUTCOMES[kind]):
                        explained[path] = said.stdout
            return len(explained) == len(kinds)

        try:
            wait_for(explain_all, timeout=60, interval=2.0, what="wire explain to tell each outcome")
        except AssertionError:
            untold = {p: last.get(p) for p in kinds if p not in explained}
            raise AssertionError(f"wire explain did not tell: {json.dumps(untold, indent=1)}") from None
        for path, text in explained.items():
            print(f"--- wire explain {path}\n{text}")
        # the 500's Retry-After of 10**12 s parks the URL until a time that comes: 6 h at most
        until = re.search(r"parked until (\S+ \S+Z)", explained["/huge-retry"])
        assert until, explained["/huge-retry"]
        due = datetime.strptime(until.group(1), "%Y-%m-%d %H:%M:%SZ").replace(tzinfo=UTC).timestamp()
        assert time.time() < due <= time.time() + 6 * 3600

        assert public.accepted > 0
        assert server.sites["internal"].accepted == 0, server.requests("internal")
        assert server.requests("internal") == []
        got = published()
        twice = {p: ts for p, ts in got.items() if len(ts) > 1}
        assert not twice, f"published more than once: {twice}"
        assert set(got) == {*honest, "/cookies/1", "/cookies/2"}, sorted(got)
        assert not [r for r in server.requests("public") if "Cookie" in r.headers], "a cookie was sent back"
        assert not [r for r in server.requests("public") if r.status == 431]
        assert run.proc.poll() is None, run.output()[-3000:]
        down = [p for p in processes if not alive(p)]
        assert not down, f"processes of wire run gone: {down}\n{run.output()[-3000:]}"
        assert " exited with status " not in run.output()
        print(f"took {time.time() - started:.1f} s")
    finally:
        stop.set()
        run.stop()
        client.close()
