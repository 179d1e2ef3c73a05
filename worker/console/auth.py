"""Console sessions and CSRF tokens, kept in Redis.

A session is created only by a login form that presents the admin token
(compared in constant time). Its id is 256 random bits in an HttpOnly,
SameSite=Strict cookie; Redis holds `{csrf, created, token}` under
`<prefix>:console:session:<id>` with a TTL, so every `wire serve` replica
sees the same sessions and logging out deletes one key. `token` is a hash
of the admin token the session was made with: once the configured token
changes (a leaked token rotated), every older session is ended on its next
request instead of living out its TTL. Every form carries
the session's CSRF token, compared in constant time. The login form itself
is protected by a double-submit cookie (a random pre-session value in a
SameSite=Strict cookie that must match the form field).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass

import redis

from ..keys import FLASH_TTL, SESSION_TTL, Keys
from ..ops import ratelimit

SESSION_COOKIE = "wire_session"
LOGIN_COOKIE = "wire_login"
LOGIN_COOKIE_MAX_AGE = 1800  # seconds the login form's double-submit cookie lives in the browser
LOGIN_FAILURES_PER_MINUTE = 10  # per client (worker.peers): the token is the only secret, slow guessing down


@dataclass(frozen=True)
class Session:
    id: str
    csrf: str
    ended: bool = False  # made with another admin token: deleted, the viewer must log in again


def token_hash(token: str) -> str:
    """What a session keeps of the admin token it was made with (never the token itself)."""
    return hashlib.sha256(b"wire-console-session\0" + token.encode()).hexdigest()


def _key(prefix: str, session_id: str) -> str:
    return Keys(prefix=prefix).console_session(session_id)


def same(given: str | None, expected: str | None) -> bool:
    """Constant-time equality that is False when either side is missing or empty."""
    if not given or not expected:
        return False
    return hmac.compare_digest(given.encode(), expected.encode())


def check_token(given: str | None, token: str | None) -> bool:
    return same(given, token)


def create(client: redis.Redis, prefix: str, token: str, *, now: float | None = None) -> Session:
    s = Session(id=secrets.token_urlsafe(32), csrf=secrets.token_urlsafe(32))
    doc = json.dumps({"csrf": s.csrf, "created": time.time() if now is None else now, "token": token_hash(token)})
    client.set(_key(prefix, s.id), doc, ex=SESSION_TTL)
    return s


def load(client: redis.Redis, prefix: str, session_id: str | None, token: str) -> Session | None:
    """The session of this cookie; `ended` (and deleted) when it was made with another admin token."""
    # ids we issued are url-safe base64 of 32 bytes; anything else is not looked up at all
    if not session_id or len(session_id) > 64 or not all(c.isalnum() or c in "-_" for c in session_id):
        return None
    raw = client.get(_key(prefix, session_id))
    if raw is None:
        return None
    doc = json.loads(raw)
    if not same(doc.get("token"), token_hash(token)):  # sessions from before binding have none: ended too
        destroy(client, prefix, session_id)
        return Session(id=session_id, csrf="", ended=True)
    return Session(id=session_id, csrf=doc["csrf"])


def destroy(client: redis.Redis, prefix: str, session_id: str) -> None:
    client.delete(_key(prefix, session_id))


def set_flash(client: redis.Redis, prefix: str, session: Session, message: str) -> None:
    client.set(Keys(prefix=prefix).console_flash(session.id), message[:2000], ex=FLASH_TTL)


def pop_flash(client: redis.Redis, prefix: str, session: Session | None) -> str | None:
    if session is None:
        return None
    pipe = client.pipeline(transaction=True)
    key = Keys(prefix=prefix).console_flash(session.id)
    pipe.get(key)
    pipe.delete(key)
    raw = pipe.execute()[0]
    return raw.decode() if isinstance(raw, bytes) else raw


def _login_key(prefix: str, who: str, now: float) -> str:
    return Keys(prefix=prefix).rate_limit("login", who, ratelimit.window_of(now, 60))


def count_login(client: redis.Redis, prefix: str, who: str, now: float) -> ratelimit.Verdict:
    """Count a login attempt from client `who` before its token is compared (a burst cannot slip through)."""
    return ratelimit.hit(client, _login_key(prefix, who, now), LOGIN_FAILURES_PER_MINUTE, 60, now)


def forgive_login(client: redis.Redis, prefix: str, who: str, now: float) -> None:
    """A login with the right token is not a guess: uncount it (same `now` as `count_login`)."""
    ratelimit.forgive(client, _login_key(prefix, who, now))


def cookie(name: str, value: str, max_age: int) -> str:
    # no `Secure`: `wire serve` speaks plain HTTP; behind a TLS proxy, the proxy may add it
    return f"{name}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age}"


def parse_cookies(header: str | None) -> dict[str, str]:
    out: dict[str, str] = {}
    for part in (header or "").split(";"):
        name, sep, value = part.strip().partition("=")
        if sep and name and name not in out:
            out[name] = value
    return out
