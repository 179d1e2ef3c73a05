"""Low-level HTTP GET with the limits a hostile server cannot get past.

The only module that touches `requests`. One `requests.Session` per thread
and address policy (re-created after a fork, because a pooled socket shared
between prefork children corrupts both). Redirects are followed by hand so
every hop is checked and counted. Three guarantees live below the session:

- the connection resolves its host once, checks every address against the
  policy (worker/guard.py), connects to a checked address and checks the
  socket's peer before a byte is sent, so DNS rebinding finds nothing to
  race;
- one wall-clock deadline covers the whole exchange (connect, TLS, headers,
  body, every hop): a watchdog thread shuts the socket down at the
  deadline, because a per-read timeout restarts at every byte a server
  drips;
- no cookie outlives its exchange: the session's jar keeps nothing, and
  cookies set by a redirect are carried to the next hop of the same GET
  only (a consent redirect works; a site cannot grow a worker's memory).
"""

from __future__ import annotations

import contextlib
import functools
import heapq
import itertools
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import requests
import urllib3
from requests.cookies import RequestsCookieJar, extract_cookies_to_jar
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.util import parse_url

from ..errors import FetchError, PermanentFetchError, TransientFetchError
from .guard import AddressPolicy, IPNetwork, check_peer, check_url, next_hop, resolve_checked

MAX_REDIRECTS = 5
CHUNK = 64 * 1024
TRANSIENT_STATUS = {408, 425, 429, 500, 502, 503, 504, 520, 521, 522, 523, 524}
# Cookies a redirect chain may carry to its next hop; past this the chain goes on without them.
MAX_HOP_COOKIE_BYTES = 8 * 1024
UNFETCHABLE = frozenset({"bad_url", "private_address"})  # the guard's reasons: no request may go there

if TYPE_CHECKING:
    from .settings import Settings

_local = threading.local()


@dataclass(frozen=True)
class Limits:
    max_bytes: int = 5 * 1024 * 1024
    deadline: float = 20.0  # wall-clock seconds for connect + all hops + body
    connect_timeout: float = 5.0
    read_timeout: float = 10.0
    allow_private: bool = False  # WIRE_ALLOW_PRIVATE_ADDRESSES
    allowed: tuple[IPNetwork, ...] = ()  # WIRE_ALLOW_ADDRESSES
    proxy: str | None = None  # WIRE_HTTP_PROXY

    @functools.cached_property
    def policy(self) -> AddressPolicy:
        return AddressPolicy(allow_private=self.allow_private, allowed=self.allowed)

    @classmethod
    def from_settings(cls, settings: Settings, **overrides: Any) -> Limits:
        """The limits `settings` set, with `overrides`."""
        values: dict[str, Any] = {
            "max_bytes": settings.max_body_bytes, "deadline": settings.fetch_timeout,
            "connect_timeout": settings.connect_timeout, "read_timeout": min(10.0, settings.fetch_timeout),
            "allow_private": settings.allow_private_addresses, "allowed": settings.allow_addresses,
            "proxy": settings.http_proxy,
        }
        return cls(**{**values, **overrides})


@dataclass(frozen=True)
class Response:
    url: str  # requested
    final_url: str
    status: int
    headers: dict[str, str]  # lower-cased names
    content: bytes
    elapsed: float

    @property
    def content_type(self) -> str | None:
        raw = self.headers.get("content-type")
        return raw.split(";")[0].strip().lower() if raw else None

    @property
    def charset(self) -> str | None:
        raw = self.headers.get("content-type") or ""
        for part in raw.split(";")[1:]:
            name, _, value = part.strip().partition("=")
            if name.lower() == "charset" and value:
                return value.strip().strip("\"'").lower()
        return None


# -- the session -----------------------------------------------------------------


def session(user_agent: str, limits: Limits) -> requests.Session:
    """The calling thread's session for this user agent, address policy and proxy; rebuilt after fork."""
    if getattr(_local, "pid", None) != os.getpid():
        _local.sessions = {}
        _local.pid = os.getpid()
    key = (user_agent, limits.policy, limits.proxy)
    sess: requests.Session | None = _local.sessions.get(key)
    if sess is None:
        sess = _Session()
        _settle_environment(sess, limits.proxy)
        sess.cookies = _NoCookies()
        sess.headers["User-Agent"] = user_agent
        sess.headers["Accept-Encoding"] = "gzip, deflate"
        adapter = _Adapter(limits.policy)
        sess.mount("http://", adapter)
        sess.mount("https://", adapter)
        _local.sessions[key] = sess
    return sess


class _Session(requests.Session):
    """A session that leaves redirects to `_follow`.

    `Session.send` runs the redirect resolver even with redirects off (to
    offer `Response.next`): it parses `Location` before `guard.next_hop`
    sees it, so a malformed one (`http://[::1`) raised ValueError out of the
    GET (the URL was dead-lettered as a bug instead of refused as a bad URL).
    """

    def resolve_redirects(self, *args: Any, **kwargs: Any) -> Iterator[Any]:
        return iter(())


def _settle_environment(sess: requests.Session, proxy: str | None) -> None:
    """Take nothing from the environment but the CA bundle; the proxy is `proxy` (WIRE_HTTP_PROXY) or none.

    Proxy variables (HTTP_PROXY, ...) are ignored: the address guard cannot
    see what a proxy connects to, so only a proxy the operator names for wire
    is used, and the guard checks each target before the proxy is asked.
    `trust_env` off also saves ~0.2 ms of CPU per page (requests scans
    os.environ and stats ~/.netrc on every request), so the CA bundle
    variables requests would have read are applied here.
    """
    sess.trust_env = False
    bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
    if bundle:
        sess.verify = bundle
    if proxy:
        sess.proxies = {"http": proxy, "https": proxy}


class _NoCookies(RequestsCookieJar):
    """The session's jar: keeps nothing. A news fetcher needs no cookies across fetches."""

    def set_cookie(self, cookie: Any, *args: Any, **kwargs: Any) -> None:
        return None

    def extract_cookies(self, response: Any, request: Any) -> None:
        return None


class _Adapter(requests.adapters.HTTPAdapter):
    """Pools whose connections connect only to checked addresses and answer to the exchange's deadline."""

    def __init__(self, policy: AddressPolicy) -> None:
        self.policy = policy
        # No urllib3 retries: retry policy lives in the task layer where it is
        # counted, paced and visible.
        super().__init__(pool_connections=16, pool_maxsize=16, max_retries=0)

    def init_poolmanager(self, connections: int, maxsize: int, block: bool = False, **kwargs: Any) -> None:
        self._pool_connections, self._pool_maxsize, self._pool_block = connections, maxsize, block
        self.poolmanager = _PoolManager(self.policy, num_pools=connections, maxsize=maxsize, block=block,
                                        **kwargs)

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> Any:
        # connections to the operator's proxy are not guarded (the target was checked in `get`),
        # but they do answer to the deadline
        manager = super().proxy_manager_for(proxy, **proxy_kwargs)
        manager.pool_classes_by_scheme = _POOLS
        return manager


class _PoolManager(urllib3.PoolManager):
    def __init__(self, policy: AddressPolicy, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.policy = policy
        self.pool_classes_by_scheme = _POOLS

    def _new_pool(self, scheme: str, host: str, port: int,
                  request_context: dict[str, Any] | None = None) -> HTTPConnectionPool:
        pool = super()._new_pool(scheme, host, port, request_context)
        pool.conn_kw["policy"] = self.policy  # not a pool key: one pool manager has one policy
        return pool


class _Connection(HTTPConnection):
    def __init__(self, *args: Any, policy: AddressPolicy | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.policy = policy

    def _new_conn(self) -> socket.socket:
        return _pinned_socket(self, super()._new_conn)

    def connect(self) -> None:
        _enlist(self)
        super().connect()

    def request(self, *args: Any, **kwargs: Any) -> None:
        _enlist(self)
        super().request(*args, **kwargs)

    def getresponse(self) -> Any:
        return _forget_response(self, super().getresponse())


class _TLSConnection(HTTPSConnection):
    """As `_Connection`; TLS still sends SNI for and verifies the certificate of the host name."""

    def __init__(self, *args: Any, policy: AddressPolicy | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.policy = policy

    def _new_conn(self) -> socket.socket:
        return _pinned_socket(self, super()._new_conn)

    def connect(self) -> None:
        _enlist(self)
        super().connect()

    def request(self, *args: Any, **kwargs: Any) -> None:
        _enlist(self)
        super().request(*args, **kwargs)

    def getresponse(self) -> Any:
        return _forget_response(self, super().getresponse())


def _forget_response(conn: HTTPConnection, response: Any) -> Any:
    """Drop http.client's reference from the connection to its last response.

    http.client keeps it (headers and all) until the next request on the
    connection, so a pooled connection held a host's megabytes of Set-Cookie
    for as long as it stayed in the pool: 16 pools a thread. The reference
    only guards against a new request before the body is read, which urllib3
    never does (a connection goes back to its pool once its response is done).
    """
    setattr(conn, "_HTTPConnection__response", None)  # noqa: B010 - name-mangled in http.client
    return response


class _Pool(HTTPConnectionPool):
    ConnectionCls = _Connection


class _TLSPool(HTTPSConnectionPool):
    ConnectionCls = _TLSConnection


_POOLS: dict[str, type[HTTPConnectionPool]] = {"http": _Pool, "https": _TLSPool}


def _pinned_socket(conn: _Connection | _TLSConnection, open_socket: Callable[[], socket.socket]) -> socket.socket:
    """Resolve the connection's host once, check every address, connect to a checked one, check the peer.

    `open_socket` is urllib3's own `_new_conn` (its socket options and error
    translation), pointed at one address literal at a time, so nothing
    resolves the name a second time. A connection without a policy goes to
    the operator's proxy and is opened as urllib3 would, as is every
    connection when WIRE_ALLOW_PRIVATE_ADDRESSES permits every address.
    """
    policy = conn.policy
    if policy is None or policy.allow_private:  # the operator's proxy, or every address allowed
        return open_socket()
    name = conn._dns_host
    addrs = resolve_checked(name.strip("[]"), conn.port or 0, policy)
    exchange: _Exchange | None = getattr(_local, "exchange", None)
    timeout = conn.timeout
    try:
        for i, addr in enumerate(addrs):
            conn._dns_host = str(addr)
            if exchange is not None and isinstance(timeout, int | float):
                # a connect cannot be woken by the watchdog: give it only the time the exchange has left
                conn.timeout = max(0.001, min(timeout, exchange.remaining()))
            try:
                sock = open_socket()
            except (urllib3.exceptions.NewConnectionError, urllib3.exceptions.ConnectTimeoutError):
                # the next address, if the exchange has time left for it
                if i + 1 == len(addrs) or (exchange is not None and exchange.remaining() <= 0):
                    raise
                continue
            try:
                check_peer(sock, addr)
            except PermanentFetchError:
                sock.close()
                raise
            return sock
    finally:
        conn._dns_host = name  # a reconnect resolves again: DNS changes still take effect
        conn.timeout = timeout
    raise AssertionError("unreachable: resolve_checked returns at least one address")


# -- the deadline ---------------------------------------------------------------


@dataclass(eq=False)
class _Exchange:
    """One GET, every hop, against one wall-clock deadline (time.monotonic)."""

    deadline: float
    conns: list[Any] = field(default_factory=list)
    expired: bool = False
    done: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)

    def remaining(self) -> float:
        return self.deadline - time.monotonic()

    def enlist(self, conn: Any) -> None:
        with self.lock:
            if self.expired:
                raise TransientFetchError("deadline exceeded", reason="timeout")
            if not self.done and conn not in self.conns:
                self.conns.append(conn)

    def expire(self) -> None:
        """At the deadline: shut down every socket of the exchange, so a blocked read returns now."""
        with self.lock:
            if self.done:
                return
            self.expired = True
            for conn in self.conns:
                sock = getattr(conn, "sock", None)
                if sock is not None:
                    with contextlib.suppress(OSError):  # already closed
                        # the plain socket's shutdown, also under TLS: it only wakes the reader
                        socket.socket.shutdown(sock, socket.SHUT_RDWR)

    def finish(self) -> None:
        with self.lock:
            self.done = True
            self.conns.clear()


class _Watchdog:
    """One thread per process that expires exchanges at their deadlines."""

    def __init__(self) -> None:
        self.pid = os.getpid()
        self._cond = threading.Condition()
        self._heap: list[tuple[float, int, _Exchange]] = []
        self._seq = itertools.count()
        threading.Thread(target=self._run, name="wire-fetch-deadline", daemon=True).start()

    def watch(self, exchange: _Exchange) -> None:
        with self._cond:
            heapq.heappush(self._heap, (exchange.deadline, next(self._seq), exchange))
            if self._heap[0][2] is exchange:  # earlier than what the thread sleeps towards
                self._cond.notify()

    def _run(self) -> None:
        with self._cond:
            while True:
                now = time.monotonic()
                while self._heap and self._heap[0][0] <= now:
                    heapq.heappop(self._heap)[2].expire()
                self._cond.wait(self._heap[0][0] - now if self._heap else None)


_watchdog_lock = threading.Lock()
_watchdog: _Watchdog | None = None


def _watch(exchange: _Exchange) -> None:
    global _watchdog
    with _watchdog_lock:
        if _watchdog is None or _watchdog.pid != os.getpid():  # threads do not survive a fork
            _watchdog = _Watchdog()
        watchdog = _watchdog
    watchdog.watch(exchange)


def _enlist(conn: Any) -> None:
    exchange: _Exchange | None = getattr(_local, "exchange", None)
    if exchange is not None:
        exchange.enlist(conn)


# -- GET -------------------------------------------------------------------------


def get(
    url: str,
    *,
    user_agent: str,
    limits: Limits,
    headers: dict[str, str] | None = None,
    before_hop: Callable[[str], None] | None = None,
) -> Response:
    """GET `url` following up to five redirects; raises TransientFetchError / PermanentFetchError.

    Every status code is returned (the caller decides what a 404 means); only
    transport failures and policy refusals raise. Each redirect target is
    checked and canonicalised (`guard.next_hop`) before `before_hop(url)`
    runs, so the caller applies robots.txt, pauses and pacing to the URL
    that is requested (it raises to stop). `limits.deadline` bounds the
    whole call, redirects and `before_hop` included.
    """
    check_url(url)
    sess = session(user_agent, limits)
    started = time.monotonic()
    exchange = _Exchange(started + limits.deadline)
    _watch(exchange)
    outer = getattr(_local, "exchange", None)  # a robots.txt GET runs inside a page's before_hop
    _local.exchange = exchange
    try:
        return _follow(sess, url, limits, headers, before_hop, exchange, started)
    except FetchError as exc:
        if exchange.expired and exc.reason != "timeout":
            # whatever the shut-down socket made the reader say, the deadline is why
            raise TransientFetchError(f"deadline of {limits.deadline:g}s exceeded", reason="timeout") from exc
        raise
    finally:
        exchange.finish()
        _local.exchange = outer


def _follow(sess: requests.Session, url: str, limits: Limits, headers: dict[str, str] | None,
            before_hop: Callable[[str], None] | None, exchange: _Exchange, started: float) -> Response:
    visited: list[str] = []
    jar: RequestsCookieJar | None = None
    current = url
    while True:
        if current in visited:
            raise PermanentFetchError("redirect loop", reason="redirect_loop")
        visited.append(current)
        remaining = exchange.remaining()
        if remaining <= 0:
            raise TransientFetchError(f"deadline of {limits.deadline:g}s exceeded", reason="timeout")
        if limits.proxy:
            _check_target(current, limits.policy)
        try:
            resp = _send(sess, current, headers, jar,
                         (min(limits.connect_timeout, remaining), min(limits.read_timeout, remaining)))
        except requests.exceptions.Timeout as exc:
            raise TransientFetchError(f"timeout: {type(exc).__name__}", reason="timeout") from exc
        except requests.exceptions.ConnectionError as exc:
            raise TransientFetchError(f"connection failed: {type(exc).__name__}", reason="connection") from exc
        except requests.exceptions.RequestException as exc:
            raise PermanentFetchError(f"bad request: {type(exc).__name__}", reason="bad_url") from exc
        try:
            if resp.is_redirect and resp.headers.get("location"):
                if len(visited) > MAX_REDIRECTS:
                    raise PermanentFetchError("too many redirects", reason="too_many_redirects")
                jar = _hop_cookies(jar, resp)
                current = next_hop(current, resp.headers["location"])
                if before_hop is not None and current not in visited:
                    before_hop(current)
                continue
            body = _read_body(resp, limits.max_bytes, exchange)
            return Response(
                url=url,
                final_url=current,
                status=resp.status_code,
                headers={k.lower(): v for k, v in resp.headers.items()},
                content=body,
                elapsed=time.monotonic() - started,
            )
        finally:
            resp.close()


def _check_target(url: str, policy: AddressPolicy) -> None:
    """Through a proxy, the connection goes to the proxy: check the target here, before the proxy is asked.

    The proxy resolves the name again; what it connects to is its own egress
    policy's to decide (see the README's notes on WIRE_HTTP_PROXY).
    """
    target = parse_url(url)
    port = target.port or (443 if target.scheme == "https" else 80)
    resolve_checked((target.host or "").strip("[]"), port, policy)


def _hop_cookies(jar: RequestsCookieJar | None, resp: requests.Response) -> RequestsCookieJar | None:
    """The cookies a redirect set, for the next hops of this GET only (bounded)."""
    if "set-cookie" not in resp.headers:
        return jar
    jar = jar if jar is not None else RequestsCookieJar()
    extract_cookies_to_jar(jar, resp.request, resp.raw)
    if sum(len(c.name) + len(c.value or "") for c in jar) > MAX_HOP_COOKIE_BYTES:
        jar.clear()
    return jar


def _send(sess: requests.Session, url: str, headers: dict[str, str] | None, jar: RequestsCookieJar | None,
          timeout: tuple[float, float]) -> requests.Response:
    """One GET on the session, streamed, redirects not followed.

    `Session.request` merges the session's settings into every request
    (headers, cookies, auth, params, hooks, the environment); the merges
    cost ~0.3 ms of CPU per page, mostly runtime `typing.Protocol` checks.
    With `trust_env` off (`_settle_environment`) the only session settings
    a GET of ours needs are its headers (and its proxies, which
    `Session.send` applies), so the request is prepared with exactly those
    and the cookies of this exchange, and sent through `Session.send`.
    """
    req = requests.PreparedRequest()
    req.prepare(method="GET", url=url, headers={**sess.headers, **(headers or {})},
                cookies=jar if jar is not None else sess.cookies)
    return sess.send(req, allow_redirects=False, stream=True, timeout=timeout)


def _read_body(resp: requests.Response, max_bytes: int, exchange: _Exchange) -> bytes:
    """Read the decoded body with a cap on decompressed size and the exchange's deadline.

    `read1` returns whatever one socket read yields; a read blocked on a
    dripping server is ended by the watchdog at the deadline, and the end of
    a body without a length that the watchdog caused is not taken for the
    end of the page.
    """
    declared = resp.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > max_bytes and "content-encoding" not in resp.headers:
        raise PermanentFetchError(f"body of {declared} bytes over the {max_bytes} cap", reason="too_large")
    raw = resp.raw
    chunks: list[bytes] = []
    size = 0
    try:
        while True:
            # past the deadline, or at an end the watchdog caused (of the headers or of a body
            # without a length): the response is cut, not complete
            if exchange.remaining() < 0 or exchange.expired:
                raise TransientFetchError("deadline exceeded before the response was complete", reason="timeout")
            chunk = raw.read1(CHUNK, decode_content=True)
            if not chunk:
                if exchange.expired:
                    raise TransientFetchError("deadline exceeded before the response was complete",
                                              reason="timeout")
                break
            size += len(chunk)
            if size > max_bytes:
                raise PermanentFetchError(f"body over the {max_bytes} byte cap", reason="too_large")
            chunks.append(chunk)
    except (urllib3.exceptions.ReadTimeoutError, TimeoutError) as exc:
        raise TransientFetchError("read timeout", reason="timeout") from exc
    except urllib3.exceptions.DecodeError as exc:
        raise PermanentFetchError(f"cannot decode body: {exc}", reason="bad_encoding") from exc
    except (urllib3.exceptions.ProtocolError, ConnectionError, OSError) as exc:
        raise TransientFetchError(f"connection broken: {type(exc).__name__}", reason="connection") from exc
    return b"".join(chunks)
