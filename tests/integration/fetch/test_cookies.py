"""No cookie outlives its fetch: hosts that set big cookies on every response cannot make the next request
carry them (or fail with 431), nor grow a worker's memory with each new host.

Run with `-s` to see the measured RSS.
"""

from __future__ import annotations

import gc
import multiprocessing as mp
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from worker.fetch import http
from worker.fetch.http import Limits, get

LIMITS = Limits(allow_private=True)
PAGE = b"<html><body><p>a story</p></body></html>"


class CookieHost:
    """A loopback host that sets `count` cookies of `size` bytes on every response and logs the Cookie it got.

    /r/<path> redirects to /<path> (setting the same cookies).
    """

    def __init__(self, address: str, count: int = 20, size: int = 200) -> None:
        self.count, self.size = count, size
        self.cookies_seen: list[tuple[str, str | None]] = []
        host = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass

            def do_GET(self) -> None:  # noqa: N802
                host.cookies_seen.append((self.path, self.headers.get("Cookie")))
                redirect = self.path.startswith("/r/")
                self.send_response(302 if redirect else 200)
                for i in range(host.count):
                    self.send_header("Set-Cookie", f"c{i}={'v' * host.size}; Path=/")
                if redirect:
                    self.send_header("Location", self.path[2:])
                self.send_header("Content-Type", "text/html")
                self.send_header("Content-Length", "0" if redirect else str(len(PAGE)))
                self.end_headers()
                if not redirect:
                    self.wfile.write(PAGE)

        self.server = ThreadingHTTPServer((address, 0), Handler)
        self.server.daemon_threads = True
        self.base = f"http://{address}:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def host() -> Iterator[CookieHost]:
    h = CookieHost("127.0.0.30")
    yield h
    h.stop()


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
    hosts = [CookieHost(f"127.0.0.{31 + i}", *FLOOD) for i in range(HOSTS)]
    try:
        ctx = mp.get_context("spawn")
        out = ctx.Queue()
        proc = ctx.Process(target=_fetch_flooding_hosts, args=([h.base for h in hosts], out))
        proc.start()
        rss, results = out.get(timeout=120)
        proc.join(30)
    finally:
        for h in hosts:
            h.stop()
    growth = rss[-1] - rss[0]
    print(f"\nRSS after each of {HOSTS} cookie-flooding hosts (MB): {rss} (+{growth:.1f} MB)")
    assert results == [200] * (2 * HOSTS)  # no 431, no failure: the second request of each host sent no cookie
    assert all(seen[1] is None for h in hosts for seen in h.cookies_seen)
    assert growth < 20, rss
