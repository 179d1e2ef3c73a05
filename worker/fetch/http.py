"""Low-level HTTP GET with the limits a hostile server cannot get past.

The only module that touches `requests`. One `requests.Session` per process
(re-created after a fork, because a pooled socket shared between prefork
children corrupts both). Redirects are followed by hand so every hop is
checked against the SSRF guard and counted.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import threading
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

import requests
import urllib3

from ..errors import PermanentFetchError, TransientFetchError

MAX_REDIRECTS = 5
CHUNK = 64 * 1024
TRANSIENT_STATUS = {408, 425, 429, 500, 502, 503, 504, 520, 521, 522, 523, 524}

_local = threading.local()


def session(user_agent: str) -> requests.Session:
    """The calling thread's session, rebuilt after fork."""
    sess: requests.Session | None = getattr(_local, "session", None)
    if sess is None or getattr(_local, "pid", None) != os.getpid():
        sess = requests.Session()
        _settle_environment(sess)
        sess.headers["User-Agent"] = user_agent
        sess.headers["Accept-Encoding"] = "gzip, deflate"
        # No urllib3 retries: retry policy lives in the task layer where it is
        # counted, paced and visible.
        adapter = requests.adapters.HTTPAdapter(pool_connections=16, pool_maxsize=16, max_retries=0)
        sess.mount("http://", adapter)
        sess.mount("https://", adapter)
        _local.session = sess
        _local.pid = os.getpid()
    return sess


def _settle_environment(sess: requests.Session) -> None:
    """Read the environment once per session instead of on every request.

    With `trust_env` on, requests scans os.environ for proxies twice and
    stats ~/.netrc on every request: ~0.2 ms of CPU per page, a fifth of the
    whole HTTP client. Without proxy variables there is nothing a per-request
    look could find, so the session stops looking; the CA bundle variables
    requests would have read are applied here. With proxy variables set, the
    session keeps requests' own per-URL handling (no_proxy and all).
    """
    if urllib.request.getproxies_environment():
        return
    sess.trust_env = False
    bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
    if bundle:
        sess.verify = bundle


def is_public_address(host: str) -> bool:
    """False when any address `host` resolves to is private, loopback, link-local, multicast or reserved."""
    try:
        infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except socket.gaierror as exc:
        raise TransientFetchError(f"cannot resolve {host}: {exc}", reason="dns") from exc
    for info in infos:
        addr = ipaddress.ip_address(info[4][0])
        if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped:
            addr = addr.ipv4_mapped
        if (addr.is_private or addr.is_loopback or addr.is_link_local or addr.is_multicast
                or addr.is_reserved or addr.is_unspecified):
            return False
    return True


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


@dataclass(frozen=True)
class Limits:
    max_bytes: int = 5 * 1024 * 1024
    deadline: float = 20.0  # total seconds for connect + all hops + body
    connect_timeout: float = 5.0
    read_timeout: float = 10.0
    allow_private: bool = False


UNFETCHABLE = frozenset({"bad_url", "private_address"})  # the reasons `refuse_unfetchable` gives


def refuse_unfetchable(url: str, limits: Limits) -> None:
    """Raise PermanentFetchError for a URL no request may go to: not http(s), no host, a private address."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise PermanentFetchError(f"refusing non-http URL {parts.scheme}://", reason="bad_url")
    if not limits.allow_private and not is_public_address(parts.hostname):
        raise PermanentFetchError(f"{parts.hostname} resolves to a private address", reason="private_address")


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
    transport failures and policy refusals raise. `before_hop(url)` runs before
    each redirect is followed, so the caller can apply robots.txt, pauses and
    pacing to every request, not only the first (it raises to stop).
    """
    sess = session(user_agent)
    started = time.monotonic()
    deadline = started + limits.deadline
    visited: list[str] = []
    current = url
    while True:
        refuse_unfetchable(current, limits)
        if current in visited:
            raise PermanentFetchError("redirect loop", reason="redirect_loop")
        visited.append(current)
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TransientFetchError("deadline exceeded", reason="timeout")
        try:
            resp = _send(sess, current, headers,
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
                current = urljoin(current, resp.headers["location"])
                if before_hop is not None and current not in visited:
                    before_hop(current)
                continue
            body = _read_body(resp, limits.max_bytes, deadline)
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


def _send(sess: requests.Session, url: str, headers: dict[str, str] | None,
          timeout: tuple[float, float]) -> requests.Response:
    """One GET on the session, streamed, redirects not followed.

    `Session.request` merges the session's settings into every request
    (headers, cookies, auth, params, hooks, the environment); the merges
    cost ~0.3 ms of CPU per page, mostly runtime `typing.Protocol` checks.
    With `trust_env` off (`_settle_environment`) the only session settings
    a GET of ours needs are its headers and its cookie jar, so the request
    is prepared with exactly those and sent through `Session.send`, which
    still stores the cookies a response sets. With proxies in the
    environment, requests' own path runs (per-URL proxy and no_proxy rules).
    """
    if sess.trust_env:
        return sess.get(url, headers=headers, allow_redirects=False, stream=True, timeout=timeout)
    req = requests.PreparedRequest()
    req.prepare(method="GET", url=url, headers={**sess.headers, **(headers or {})}, cookies=sess.cookies)
    return sess.send(req, allow_redirects=False, stream=True, timeout=timeout)


def _read_body(resp: requests.Response, max_bytes: int, deadline: float) -> bytes:
    """Read the decoded body with a cap on decompressed size and a total deadline.

    `read1` returns whatever one socket read yields, so a server dripping a
    byte a second is cut off at the deadline instead of holding the worker.
    """
    declared = resp.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > max_bytes and "content-encoding" not in resp.headers:
        raise PermanentFetchError(f"body of {declared} bytes over the {max_bytes} cap", reason="too_large")
    raw = resp.raw
    chunks: list[bytes] = []
    size = 0
    try:
        while True:
            if time.monotonic() > deadline:
                raise TransientFetchError("deadline exceeded while reading the body", reason="timeout")
            chunk = raw.read1(CHUNK, decode_content=True)
            if not chunk:
                break
            size += len(chunk)
            if size > max_bytes:
                raise PermanentFetchError(f"body over the {max_bytes} byte cap", reason="too_large")
            chunks.append(chunk)
    except (urllib3.exceptions.ReadTimeoutError, TimeoutError) as exc:
        raise TransientFetchError("read timeout", reason="timeout") from exc
    except urllib3.exceptions.DecodeError as exc:
        raise PermanentFetchError(f"cannot decode body: {exc}", reason="bad_encoding") from exc
    except (urllib3.exceptions.ProtocolError, ConnectionError) as exc:
        raise TransientFetchError(f"connection broken: {type(exc).__name__}", reason="connection") from exc
    return b"".join(chunks)
