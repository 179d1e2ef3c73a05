"""The one loopback multi-host HTTP server of the tests.

Each site binds its own loopback address (127.0.0.x), so per-host politeness
applies per site as it would on the web. A route maps a path to what the
site answers: a `Resp`, a ``(status, headers, body)`` tuple, or a callable
``(count, request_headers)`` returning either (``count`` is how often that
path was requested, this request included). A body may be bytes, text, or
an iterable of chunks streamed with ``Connection: close`` (a slow drip, a
30 MB page); a header value may be a list (one header line each: many
Set-Cookie); a `Raw` answer is written to the socket as it is, status line
and headers included (headers dripped a byte at a time). Every request is
logged on arrival (site, path, headers, time, status, whether the answer
carried validators) so a test checks what the crawler did, not what it says,
and every connection a site accepts is counted (`Site.accepted`), requests
or not. A site added with an `ssl.SSLContext` serves HTTPS with it (the handshake happens
in the request's thread, so a client that never finishes it holds no other request up).
"""

from __future__ import annotations

import hashlib
import ssl
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

HTML = {"Content-Type": "text/html; charset=utf-8"}
RSS = {"Content-Type": "application/rss+xml; charset=utf-8"}
XML = {"Content-Type": "application/xml"}
TEXT = {"Content-Type": "text/plain"}


@dataclass
class Request:
    """A logged request, and whether the answer carried ETag or Last-Modified."""

    host: str  # the site's name
    path: str
    headers: dict[str, str]
    time: float  # when it arrived
    status: int
    validators: bool = False


@dataclass
class Resp:
    status: int
    headers: dict[str, str] | dict[str, str | list[str]] = field(default_factory=dict)
    body: bytes | str | Iterable[bytes] = b""
    length: int | None = None  # Content-Length to announce for a streamed body


@dataclass
class Raw:
    """Bytes written to the socket as they come (flushed each), then the connection is closed.

    `status` is only what the request log records.
    """

    chunks: Iterable[bytes]
    status: int = 0


Answer = Resp | Raw | tuple[int, dict[str, str], bytes | str]


def drip(stop: threading.Event, head: bytes, *, every: float = 0.5, lasting: float = 60.0, tail: bytes = b"",
         status: int = 200) -> Raw:
    """An answer that sends `head`, then one byte (`a`) every `every` seconds for `lasting` seconds (or until
    `stop` is set), then `tail`: where the byte lands (a header value, a body) is what `head` leaves open."""
    def chunks() -> Iterator[bytes]:
        yield head
        end = time.monotonic() + lasting
        while not stop.is_set() and time.monotonic() < end:
            yield b"a"
            time.sleep(every)
        if tail:
            yield tail
    return Raw(chunks(), status=status)


def header_drip(stop: threading.Event, *, every: float = 0.5, lasting: float = 60.0) -> Callable[..., Raw]:
    """A route that sends its status line, then one header byte every `every` seconds for `lasting`
    seconds (or until `stop` is set): a server holding a fetch far past any deadline."""
    head = b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nX-Drip: "
    return lambda count, req: drip(stop, head, every=every, lasting=lasting)


def body_drip(stop: threading.Event, *, length: int | None = None, every: float = 0.5,
              lasting: float = 60.0) -> Callable[..., Raw]:
    """A route that sends whole headers (announcing `length` bytes, or close-delimited when None) and the
    start of a page, then one body byte every `every` seconds for `lasting` seconds (or until `stop` is
    set): a body that never arrives in time."""
    announced = b"" if length is None else f"Content-Length: {length}\r\n".encode()
    head = (b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nConnection: close\r\n" + announced
            + b"\r\n<html><body><p>")
    return lambda count, req: drip(stop, head, every=every, lasting=lasting)


def redirect_drip(stop: threading.Event, location: str, *, hold: float) -> Callable[..., Raw]:
    """A route that drips a 302's header bytes for `hold` seconds, then redirects to `location`."""
    tail = f"\r\nLocation: {location}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".encode()
    return lambda count, req: drip(stop, b"HTTP/1.1 302 Found\r\nX-Drip: ", lasting=hold, tail=tail, status=302)


Route = Answer | Callable[[int, dict[str, str]], Answer]


def static(body: str | bytes, headers: dict[str, str] | None = None, *, validators: bool = True,
           modified: float = 1_700_000_000.0) -> Callable[[int, dict[str, str]], Resp]:
    """A page with ETag and Last-Modified that answers 304 to a matching conditional GET."""
    data = body.encode() if isinstance(body, str) else body
    etag = '"' + hashlib.sha1(data).hexdigest()[:16] + '"'
    last_modified = formatdate(modified, usegmt=True)
    base = dict(headers or HTML)
    if validators:
        base.update({"ETag": etag, "Last-Modified": last_modified})

    def route(count: int, req: dict[str, str]) -> Resp:
        if validators and (req.get("If-None-Match") == etag or
                           ("If-None-Match" not in req and req.get("If-Modified-Since") == last_modified)):
            return Resp(304, {"ETag": etag})
        return Resp(200, base, data)

    return route


def fixed(status: int, headers: dict[str, str] | None = None,
          body: str | bytes = b"") -> Callable[[int, dict[str, str]], Resp]:
    return lambda count, req: Resp(status, dict(headers or {}), body)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    site: Site

    def get_request(self) -> tuple[Any, Any]:
        accepted = super().get_request()
        with self.site.lock:
            self.site.accepted += 1
        return accepted

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # the crawler hanging up on a drip, a 30 MB body or at its body cap is the point, not an error


@dataclass
class Site:
    """One site on its own loopback address."""

    name: str
    address: str
    routes: dict[str, Route] = field(default_factory=dict)
    hits: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    server: _Server | None = None
    tls: bool = False  # served over HTTPS
    accepted: int = 0  # connections accepted, whether a request came on them or not
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def base(self) -> str:
        assert self.server is not None
        return f"{'https' if self.tls else 'http'}://{self.address}:{self.server.server_address[1]}"


class SiteServer:
    """Sites on loopback addresses; one request log for all of them."""

    def __init__(self) -> None:
        self.sites: dict[str, Site] = {}
        self.log: list[Request] = []
        self._lock = threading.Lock()

    def add(self, name: str, address: str, port: int = 0, tls: ssl.SSLContext | None = None) -> Site:
        site = Site(name=name, address=address, tls=tls is not None)
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # headers and body are two writes: with Nagle on, a body's tail waits for
            # the client's delayed ACK (40 ms for about 4 responses in 10)
            disable_nagle_algorithm = True

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass

            def do_GET(self) -> None:  # noqa: N802
                arrived = time.time()
                with server._lock:
                    site.hits[self.path] += 1
                    count = site.hits[self.path]
                route = site.routes.get(self.path)
                answer = route(count, dict(self.headers)) if callable(route) else route
                if answer is None:
                    answer = Resp(404, HTML, "<html><body>Not found</body></html>")
                resp = answer if isinstance(answer, Resp | Raw) else Resp(*answer)
                with server._lock:
                    server.log.append(Request(site.name, self.path, dict(self.headers), arrived, resp.status,
                                              isinstance(resp, Resp) and
                                              ("ETag" in resp.headers or "Last-Modified" in resp.headers)))
                if isinstance(resp, Raw):
                    self._raw(resp)
                else:
                    self._answer(resp)

            def _raw(self, resp: Raw) -> None:
                self.close_connection = True
                try:
                    for chunk in resp.chunks:
                        self.wfile.write(chunk)
                        self.wfile.flush()
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the crawler hung up: what a drip is for

            def _answer(self, resp: Resp) -> None:
                self.send_response(resp.status)
                for k, v in resp.headers.items():
                    for value in v if isinstance(v, list) else [v]:
                        self.send_header(k, value)
                body = resp.body
                try:
                    if isinstance(body, str | bytes):
                        data = body.encode() if isinstance(body, str) else body
                        self.send_header("Content-Length", str(len(data)))
                        self.end_headers()
                        self.wfile.write(data)
                    else:
                        if resp.length is not None:
                            self.send_header("Content-Length", str(resp.length))
                        self.send_header("Connection", "close")
                        self.end_headers()
                        for chunk in body:
                            self.wfile.write(chunk)
                            self.wfile.flush()
                        self.close_connection = True
                except (BrokenPipeError, ConnectionResetError):
                    self.close_connection = True  # the crawler hung up on us: expected for the hostile routes

        httpd = _Server((address, port), Handler)
        if tls is not None:  # the handshake on the connection's first read, in its own thread
            httpd.socket = tls.wrap_socket(httpd.socket, server_side=True, do_handshake_on_connect=False)
        httpd.site = site
        site.server = httpd
        threading.Thread(target=httpd.serve_forever, daemon=True).start()
        self.sites[name] = site
        return site

    def stop(self) -> None:
        for site in self.sites.values():
            if site.server:
                site.server.shutdown()
                site.server.server_close()

    def requests(self, site: str | None = None, path: str | None = None) -> list[Request]:
        """The logged requests, to one site and one path when given."""
        with self._lock:
            return [r for r in self.log if (site is None or r.host == site) and (path is None or r.path == path)]
