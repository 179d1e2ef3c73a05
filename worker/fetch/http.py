"""Low-level HTTP GET with the limits a hostile server cannot get past.

The only module that sends requests (through the thread's session of
worker/fetch/connections.py, whose connections go only to addresses the
guard allows). Redirects are followed by hand, so every hop is checked,
canonicalised and counted before a request goes to it. One wall-clock
deadline (worker/fetch/deadline.py) covers the whole exchange: connect,
TLS, headers, body and every hop. Cookies set by a redirect are carried to
the next hop of the same GET only, and bounded (a consent redirect works;
a site cannot grow a worker's memory).
"""
from __future__ import annotations

import functools
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import requests
import urllib3
from requests.cookies import RequestsCookieJar, extract_cookies_to_jar
from urllib3.util import parse_url

from ..errors import FetchError, PermanentFetchError, TransientFetchError
from . import deadline
from .connections import session
from .guard import AddressPolicy, IPNetwork, check_url, next_hop, resolve_checked

MAX_REDIRECTS = 5
CHUNK = 64 * 1024
TRANSIENT_STATUS = {408, 425, 429, 500, 502, 503, 504, 520, 521, 522, 523, 524}
# Cookies a redirect chain may carry to its next hop; past this the chain goes on without them.
MAX_HOP_COOKIE_BYTES = 8 * 1024
UNFETCHABLE = frozenset({"bad_url", "private_address"})  # the guard's reasons: no request may go there

if TYPE_CHECKING:
    from ..settings import Settings


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
    # nested when a robots.txt GET runs inside a page's before_hop
    with deadline.exchange(started + limits.deadline) as exchange:
        try:
            return _follow(sess, url, limits, headers, before_hop, exchange, started)
        except FetchError as exc:
            if exchange.expired and exc.reason != "timeout":
                # whatever the shut-down socket made the reader say, the deadline is why
                raise TransientFetchError(f"deadline of {limits.deadline:g}s exceeded", reason="timeout") from exc
            raise


def _follow(sess: requests.Session, url: str, limits: Limits, headers: dict[str, str] | None,
            before_hop: Callable[[str], None] | None, exchange: deadline.Exchange, started: float) -> Response:
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
    With `trust_env` off (`connections._settle_environment`) the only session settings
    a GET of ours needs are its headers (and its proxies, which
    `Session.send` applies), so the request is prepared with exactly those
    and the cookies of this exchange, and sent through `Session.send`.
    """
    req = requests.PreparedRequest()
    req.prepare(method="GET", url=url, headers={**sess.headers, **(headers or {})},
                cookies=jar if jar is not None else sess.cookies)
    return sess.send(req, allow_redirects=False, stream=True, timeout=timeout)


def capped_number(digits: str, cap: int) -> int:
    """The ASCII digits `digits` as a number, at most `cap`: a header's number compared without int()
    on thousands of digits (Python refuses strings of over 4,300) or float() (which says inf)."""
    digits = digits.lstrip("0") or "0"
    return cap if len(digits) > len(str(cap)) else min(int(digits), cap)


def _over(declared: str, limit: int) -> bool:
    """Whether a Content-Length value states more than `limit` bytes (False when it is not a number:
    '²'.isdigit() is true, int('²') fails)."""
    declared = declared.strip()
    return declared.isascii() and declared.isdigit() and capped_number(declared, limit + 1) > limit


def _read_body(resp: requests.Response, max_bytes: int, exchange: deadline.Exchange) -> bytes:
    """Read the decoded body with a cap on decompressed size and the exchange's deadline.

    `read1` returns whatever one socket read yields; a read blocked on a
    dripping server is ended by the watchdog at the deadline, and the end of
    a body without a length that the watchdog caused is not taken for the
    end of the page.
    """
    declared = resp.headers.get("content-length") or ""
    if _over(declared, max_bytes) and "content-encoding" not in resp.headers:
        stated = declared.strip() if len(declared) <= 20 else f"{declared.strip()[:20]}... ({len(declared)} digits)"
        raise PermanentFetchError(f"body of {stated} bytes over the {max_bytes} cap", reason="too_large")
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
