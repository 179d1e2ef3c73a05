"""Being a crawler publishers let in: robots.txt, shared per-host pacing, host pauses.

All state lives in Redis so every worker process on every machine sees the
same robots.txt verdict, the same request slots and the same pauses.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlsplit

import redis
from protego import Protego

from .errors import HostPaused
from .http import Limits, get
from .keys import ROBOTS_ERROR_TTL, ROBOTS_TTL, Keys, as_text

# Reserve the next request slot for a host. The slot time lives in one key;
# each caller takes max(now, next) and pushes `next` by one interval, so N
# workers on M machines together never exceed the rate. A caller whose slot
# is further away than max_wait reserves nothing and parks its URL instead.
_PACE_LUA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local nxt = tonumber(redis.call('GET', KEYS[1]) or '0')
local interval = tonumber(ARGV[1])
local slot = math.max(now, nxt)
local wait = slot - now
if wait > tonumber(ARGV[2]) then
  return -wait
end
redis.call('SET', KEYS[1], slot + interval, 'PX', wait + interval + 60000)
return wait
"""


def origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc.lower()}"


def host_of(url: str) -> str:
    return (urlsplit(url).hostname or "").lower()


def parse_retry_after(value: str | None, now: float) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or HTTP date)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - now)


@dataclass(frozen=True)
class RobotsVerdict:
    allowed: bool
    crawl_delay: float | None


class Politeness:
    def __init__(self, client: redis.Redis, keys: Keys, *, user_agent: str, limits: Limits,
                 default_rate: float = 1.0, max_wait: float = 10.0) -> None:
        self.r = client
        self.keys = keys
        self.user_agent = user_agent
        self.limits = limits
        self.default_rate = default_rate
        self.max_wait = max_wait
        self._pace = client.register_script(_PACE_LUA)
        self._robots_local: dict[str, tuple[float, Protego | None]] = {}

    # -- pauses ---------------------------------------------------------------
    def pause(self, host: str, seconds: float, reason: str) -> None:
        """Stop fetching from `host` for `seconds` (keeps the longer of two pauses)."""
        key = self.keys.host_pause(host)
        ms = max(1, int(seconds * 1000))
        current = self.r.pttl(key)
        if current is None or current < ms:
            self.r.set(key, reason, px=ms)

    def paused_for(self, host: str) -> float:
        ms = self.r.pttl(self.keys.host_pause(host))
        return ms / 1000.0 if ms and ms > 0 else 0.0

    def check_paused(self, host: str) -> None:
        left = self.paused_for(host)
        if left > 0:
            raise HostPaused(f"host {host} paused for {left:.0f}s", retry_after=left)

    # -- robots.txt -----------------------------------------------------------
    def robots(self, url: str) -> RobotsVerdict:
        """Verdict for `url`; raises HostPaused when robots.txt is unavailable (RFC 9309 2.3.1.4)."""
        org = origin(url)
        parser = self._robots_parser(org)
        if parser is None:
            return RobotsVerdict(True, None)
        allowed = parser.can_fetch(url, self.user_agent)
        delay = parser.crawl_delay(self.user_agent)
        return RobotsVerdict(bool(allowed), float(delay) if delay else None)

    def _robots_parser(self, org: str) -> Protego | None:
        now = time.monotonic()
        cached = self._robots_local.get(org)
        if cached and cached[0] > now:
            return cached[1]
        key = self.keys.robots(org)
        raw = self.r.get(key)
        if raw is None:
            record = self._fetch_robots(org)
            ttl = ROBOTS_TTL if record["state"] != "unavailable" else record.get("retry_after") or ROBOTS_ERROR_TTL
            self.r.set(key, json.dumps(record), ex=int(ttl))
        else:
            record = json.loads(as_text(raw))
        if record["state"] == "unavailable":
            left = self.r.ttl(key)
            raise HostPaused(f"robots.txt of {org} unavailable ({record.get('status')}); host paused",
                             reason="robots_unavailable", retry_after=float(max(left, 1)))
        parser = Protego.parse(record["body"]) if record["state"] == "rules" else None
        # a short in-process cache saves a Redis round trip and a parse per page
        self._robots_local[org] = (now + 60.0, parser)
        return parser

    def _fetch_robots(self, org: str) -> dict[str, Any]:
        from .errors import FetchError

        try:
            resp = get(org + "/robots.txt", user_agent=self.user_agent,
                       limits=Limits(max_bytes=512 * 1024, deadline=min(self.limits.deadline, 15.0),
                                     connect_timeout=self.limits.connect_timeout,
                                     read_timeout=self.limits.read_timeout,
                                     allow_private=self.limits.allow_private))
        except FetchError as exc:
            return {"state": "unavailable", "status": getattr(exc, "reason", "error")}
        if resp.status == 429 or resp.status >= 500:
            retry = parse_retry_after(resp.headers.get("retry-after"), time.time())
            return {"state": "unavailable", "status": resp.status,
                    "retry_after": min(max(retry or ROBOTS_ERROR_TTL, 5), 3600)}
        if 400 <= resp.status < 500:
            return {"state": "allow_all", "status": resp.status}  # RFC 9309: "unavailable" = allow
        text = resp.content[: 500 * 1024].decode("utf-8", errors="replace")
        return {"state": "rules", "status": resp.status, "body": text}

    # -- pacing ---------------------------------------------------------------
    def wait_turn(self, host: str, rate: float | None, crawl_delay: float | None) -> None:
        """Block until this process may send a request to `host`, or raise HostPaused to park."""
        rps = rate or self.default_rate
        if crawl_delay:
            rps = min(rps, 1.0 / crawl_delay)
        interval_ms = max(1, int(1000.0 / rps))
        wait_ms = int(self._pace(keys=[self.keys.host_rate(host)], args=[interval_ms, int(self.max_wait * 1000)]))
        if wait_ms < 0:
            raise HostPaused(f"host {host} busy for {-wait_ms / 1000:.1f}s", reason="host_busy",
                             retry_after=-wait_ms / 1000.0)
        if wait_ms:
            time.sleep(wait_ms / 1000.0)
