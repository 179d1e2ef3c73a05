"""The `requests` session of a fetch thread, and connections that go only where the guard allows.

One `requests.Session` per thread, user agent, address policy and proxy
(re-created after a fork, because a pooled socket shared between prefork
children corrupts both). Below the session:

- a connection resolves its host once, checks every address against the
  policy (worker/fetch/guard.py), connects to a checked address and checks
  the socket's peer before a byte is sent, so DNS rebinding finds nothing
  to race;
- every connection enlists in the thread's exchange (worker/fetch/deadline.py),
  so the deadline of the GET can shut it down;
- no cookie outlives its exchange: the session's jar keeps nothing (the
  cookies a redirect sets are carried by `http.get` to the next hop only).
"""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import requests
import urllib3
from requests.cookies import RequestsCookieJar
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

from ..errors import PermanentFetchError
from . import deadline
from .guard import AddressPolicy, check_peer, resolve_checked

if TYPE_CHECKING:
    from .http import Limits

_sessions = threading.local()


def session(user_agent: str, limits: Limits) -> requests.Session:
    """The calling thread's session for this user agent, address policy and proxy; rebuilt after fork."""
    if getattr(_sessions, "pid", None) != os.getpid():
        _sessions.by_key = {}
        _sessions.pid = os.getpid()
    key = (user_agent, limits.policy, limits.proxy)
    sess: requests.Session | None = _sessions.by_key.get(key)
    if sess is None:
        sess = _Session()
        _settle_environment(sess, limits.proxy)
        sess.cookies = _NoCookies()
        sess.headers["User-Agent"] = user_agent
        sess.headers["Accept-Encoding"] = "gzip, deflate"
        adapter = _Adapter(limits.policy)
        sess.mount("http://", adapter)
        sess.mount("https://", adapter)
        _sessions.by_key[key] = sess
    return sess


class _Session(requests.Session):
    """A session that leaves redirects to `http.get`, which follows them by hand.

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


class _Guarded(HTTPConnection):
    """What wire adds to an urllib3 connection: dial the address the guard allowed, under the fetch's deadline.

    Plain HTTP as it is; for TLS it goes ahead of HTTPSConnection, which
    `super()` then reaches: TLS still sends SNI for, and verifies the
    certificate of, the host name.
    """

    def __init__(self, *args: Any, policy: AddressPolicy | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.policy = policy

    def _new_conn(self) -> socket.socket:
        return _pinned_socket(self, super()._new_conn)

    def connect(self) -> None:
        deadline.enlist(self)
        super().connect()

    def request(self, *args: Any, **kwargs: Any) -> None:
        deadline.enlist(self)
        super().request(*args, **kwargs)

    def getresponse(self) -> Any:
        return _forget_response(self, super().getresponse())


class _TLSConnection(_Guarded, HTTPSConnection):
    pass


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
    ConnectionCls = _Guarded


class _TLSPool(HTTPSConnectionPool):
    ConnectionCls = _TLSConnection


_POOLS: dict[str, type[HTTPConnectionPool]] = {"http": _Pool, "https": _TLSPool}


def _pinned_socket(conn: _Guarded, open_socket: Callable[[], socket.socket]) -> socket.socket:
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
    exchange = deadline.current()
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
