"""No cookie outlives its fetch: hosts that set big cookies on every response cannot make the next request
carry them (or fail with 431), nor grow a worker's memory with each new host.

Run with `-s` to see the measured RSS.
"""

from __future__ import annotations

import gc
import multiprocessing as mp
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.loopback import Resp, SiteServer
from worker.fetch import http
from worker.fetch.http import Limits, get

LIMITS = Limits(allow_private=True)
PAGE = b"<html><body><p>a story</p></body></html>"


class CookieHost:
    """A loopback site that sets `count` cookies of `size` bytes on every response and logs the Cookie it got.

    /r/<path> redirects to /<path> (setting the same cookies).
    """

    PATHS = ("/a", "/b", "/c", "/story", "/other")

    def __init__(self, server: SiteServer, address: str, count: int = 20, size: int = 200) -> None:
        self.count, self.size = count, size
        self.server = server
        self.site = server.add(address, address)
        self.base = self.site.base
        for path in self.PATHS:
            self.site.routes[path] = self._route(path)
            self.site.routes["/r" + path] = self._route("/r" + path)

    @property
    def cookies_seen(self) -> list[tuple[str, str | None]]:
        return [(r.path, r.headers.get("Cookie")) for r in self.server.requests(self.site.name)]

    def _route(self, path: str) -> Callable[[int, dict[str, str]], Resp]:
        def answer(count: int, req: dict[str, str]) -> Resp:
            redirect = path.startswith("/r/")
            headers: dict[str, str | list[str]] = {
                "Set-Cookie": [f"c{i}={'v' * self.size}; Path=/" for i in range(self.count)],
                "Content-Type": "text/html"}
            if redirect:
                headers["Location"] = path[2:]
            return Resp(302 if redirect else 200, headers, b"" if redirect else PAGE)
        return answer


@pytest.fixture
def host() -> Iterator[CookieHost]:
    server = SiteServer()
    yield CookieHost(server, "127.0.0.30")
    server.stop()


def test_the_next_fetch_carries_no_cookie(host: CookieHost) -> None:
    """Cookies a response set are not sent with the next fetch, to the same host or any other."""
    for path in ("/a", "/b", "/c"):
        assert get(host.base + path, user_agent="t", limits=LIMITS).content == PAGE
    assert host.cookies_seen == [("/a", None), ("/b", None), ("/c", None)]


def test_a_redirect_chain_keeps_its_cookies_to_its_end_only(host: CookieHost) -> None:
    """A consent-style redirect's cookies reach the next hop of the same fetch, never a later fetch."""
    host.count = 2
    assert get(host.base + "/r/story", user_agent="t", limits=LIMITS).content == PAGE
    assert get(host.base + "/other", user_agent="t", limits=LIMITS).content == PAGE
    (first, hop, later) = host.cookies_seen
    assert first == ("/r/story", None) and later == ("/other", None)
    assert hop[0] == "/story" and hop[1] is not None and sorted(hop[1].split("; ")) == [
        f"c0={'v' * 200}", f"c1={'v' * 200}"]


def test_a_redirect_chain_carries_a_bounded_jar(host: CookieHost) -> None:
    """Past MAX_HOP_COOKIE_BYTES the chain goes on without cookies instead of sending a giant header."""
    host.count, host.size = 40, http.MAX_HOP_COOKIE_BYTES // 20
    assert get(host.base + "/r/story", user_agent="t", limits=LIMITS).content == PAGE
    assert host.cookies_seen == [("/r/story", None), ("/story", None)]


# ----------------------------------------------------------------------------- memory

HOSTS = 12
FLOOD = (90, 50_000)  # cookies per response and bytes per cookie: 4.5 MB of Set-Cookie per response


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def _fetch_flooding_hosts(bases: list[str], out: Any) -> None:
    """In a fresh process: fetch each host twice; RSS after each host."""
    results: list[Any] = []
    rss: list[float] = []
    for base in bases:
        for path in ("/a", "/b"):
            try:
                resp = get(base + path, user_agent="t", limits=LIMITS)
                results.append(resp.status)
            except Exception as exc:  # reported to the parent, which asserts
                results.append(repr(exc))
        gc.collect()
        rss.append(round(_rss_mb(), 1))
    out.put((rss, results))


def test_memory_does_not_grow_with_the_hosts_that_set_cookies() -> None:
    """12 hosts each setting 4.5 MB of cookies on every response: a worker's RSS does not grow host by host.

    Kept cookies would add 4.5 MB a host (54 MB in all); the bound leaves room for the allocator's noise
    around 4.5 MB allocations (0 to 13 MB seen between runs).
    """
    server = SiteServer()
    hosts = [CookieHost(server, f"127.0.0.{31 + i}", *FLOOD) for i in range(HOSTS)]
    try:
        ctx = mp.get_context("spawn")
        out = ctx.Queue()
        proc = ctx.Process(target=_fetch_flooding_hosts, args=([h.base for h in hosts], out))
        proc.start()
        rss, results = out.get(timeout=120)
        proc.join(30)
    finally:
        server.stop()
    growth = rss[-1] - rss[0]
    print(f"\nRSS after each of {HOSTS} cookie-flooding hosts (MB): {rss} (+{growth:.1f} MB)")
    assert results == [200] * (2 * HOSTS)  # no 431, no failure: the second request of each host sent no cookie
    assert all(seen[1] is None for h in hosts for seen in h.cookies_seen)
    assert growth < 20, rss
