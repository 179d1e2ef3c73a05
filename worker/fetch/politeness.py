"""Being a crawler publishers let in: robots.txt, shared per-host pacing, host pauses.

All state lives in Redis so every worker process on every machine sees the
same robots.txt verdict, the same request slots and the same pauses.
"""

from __future__ import annotations

import json
import math
import re
import time
from dataclasses import dataclass, replace
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlsplit

import redis
from protego import Protego

from ..errors import FetchError, HostPaused, PermanentFetchError, TransientFetchError
from ..keys import PAUSE_LOG_MAX, ROBOTS_ERROR_TTL, ROBOTS_TTL, WALLS_TTL, Keys, as_text
from . import deadline
from .http import UNFETCHABLE, Limits, capped_number, get

# Reserve the next request slot for a host. The slot time lives in one key;
# each caller takes max(now, next) and pushes `next` by one interval, so N
# workers on M machines together never exceed the rate. A caller whose slot
# is further away than max_wait reserves nothing and parks its URL instead
# (a negative reply: minus the wait). A Lua function, so the fetcher's
# pre-request script (worker/fetch/fetcher.py) reserves slots with the same code.
PACE_FUNCTION = """
local function pace(key, interval, max_wait)
  local t = redis.call('TIME')
  local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  local nxt = tonumber(redis.call('GET', key) or '0')
  local slot = math.max(now, nxt)
  local wait = slot - now
  if wait > max_wait then
    return -wait
  end
  redis.call('SET', key, slot + interval, 'PX', wait + interval + 60000)
  return wait
end
"""
_PACE_LUA = PACE_FUNCTION + "return pace(KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]))\n"

# The bot-wall circuit breaker: count challenge pages in a row per host; at the
# limit, reset the count, note when it tripped and return how many times it
# tripped in a row (the backoff exponent). A real page clears both counters.
# A page fetched before the last trip is ignored: when the breaker trips, the
# pipeline still holds pages the host served before its pause began, and
# their challenges would trip it again at once (doubling a pause the host has
# done nothing to earn), or a real page among them would reset the backoff.
# KEYS: count, trips, last trip time. ARGV: challenge (0/1), limit, TTL,
# the page's fetch time, now.
_WALLS_LUA = """
if tonumber(ARGV[4]) < tonumber(redis.call('GET', KEYS[3]) or '0') then
  return 0
end
if ARGV[1] == '0' then
  redis.call('DEL', KEYS[1], KEYS[2])
  return 0
end
local n = redis.call('INCR', KEYS[1])
redis.call('EXPIRE', KEYS[1], ARGV[3])
if n < tonumber(ARGV[2]) then
  return 0
end
redis.call('DEL', KEYS[1])
local trips = redis.call('INCR', KEYS[2])
redis.call('EXPIRE', KEYS[2], ARGV[3])
redis.call('SET', KEYS[3], ARGV[5], 'EX', ARGV[3])
return trips
"""
# The longest wait wire schedules for anything: a Retry-After, a pause, a park.
# A server asking for more (or for forever) is asked again after this long.
MAX_WAIT = 6 * 3600.0
MAX_WALL_PAUSE = MAX_WAIT
_DELTA_SECONDS = re.compile(r"[0-9]+")  # ASCII digits only: '²'.isdigit() is true, float('²') fails


def origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc.lower()}"


def host_of(url: str) -> str:
    return (urlsplit(url).hostname or "").lower()


def parse_retry_after(value: str | None, now: float) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or HTTP date), at most MAX_WAIT.

    None when the value is neither (the caller's default backoff applies):
    never infinite, never NaN, never negative.
    """
    if not value:
        return None
    value = value.strip()
    if _DELTA_SECONDS.fullmatch(value):
        return float(capped_number(value, int(MAX_WAIT)))
    try:
        when = parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError, OverflowError, IndexError):
        return None
    return min(max(when - now, 0.0), MAX_WAIT)


def finite_wait(seconds: float | None, default: float) -> float:
    """A wait safe to schedule: `default` when missing or not a number, else within [0, MAX_WAIT]."""
    if seconds is None or math.isnan(seconds):
        return default
    return min(max(seconds, 0.0), MAX_WAIT)


def _seconds_left(pttl_ms: int | None) -> float:
    """A PTTL reply as seconds left (0 for a missing key or one without expiry)."""
    return pttl_ms / 1000.0 if pttl_ms and pttl_ms > 0 else 0.0


@dataclass(frozen=True)
class RobotsVerdict:
    allowed: bool
    crawl_delay: float | None


class Politeness:
    def __init__(self, client: redis.Redis, keys: Keys, *, user_agent: str, limits: Limits,
                 default_rate: float = 1.0, max_wait: float = 10.0, wall_limit: int = 5,
                 wall_pause: float = 600.0) -> None:
        self.r = client
        self.keys = keys
        self.user_agent = user_agent
        self.limits = limits
        self.default_rate = default_rate
        self.max_wait = max_wait
        self.wall_limit = wall_limit
        self.wall_pause = wall_pause
        self._pace = client.register_script(_PACE_LUA)
        self._walls = client.register_script(_WALLS_LUA)
        self._robots_local: dict[str, tuple[float, Protego | None]] = {}

    # -- pauses ---------------------------------------------------------------
    def pause(self, host: str, seconds: float, reason: str) -> None:
        """Stop fetching from `host` for `seconds` (keeps the longer of two pauses)."""
        key = self.keys.host_pause(host)
        ms = max(1, int(finite_wait(seconds, 0.0) * 1000))
        current = self.r.pttl(key)
        if current is None or current < ms:
            now = time.time()
            event = json.dumps({"host": host, "reason": reason, "since": now, "until": now + ms / 1000.0})
            pipe = self.r.pipeline(transaction=False)
            pipe.set(key, reason, px=ms)
            pipe.lpush(self.keys.pauses(), event)
            pipe.ltrim(self.keys.pauses(), 0, PAUSE_LOG_MAX - 1)
            pipe.execute()

    def paused_for(self, host: str) -> float:
        return _seconds_left(self.r.pttl(self.keys.host_pause(host)))

    def check_paused(self, host: str) -> None:
        self.raise_if_paused(host, self.r.pttl(self.keys.host_pause(host)))

    @staticmethod
    def raise_if_paused(host: str, pttl_ms: int | None) -> None:
        """Raise HostPaused when the PTTL of the host's pause key (read by the caller) says it is paused."""
        left = _seconds_left(pttl_ms)
        if left > 0:
            raise HostPaused(f"host {host} paused for {left:.0f}s", retry_after=left)

    # -- bot-wall circuit breaker ---------------------------------------------
    def _wall_keys(self, host: str) -> list[str]:
        return [self.keys.host_walls(host), self.keys.host_wall_trips(host), self.keys.host_wall_tripped(host)]

    def clear_walls(self, host: str, pipe: Any, fetched_at: float) -> None:
        """Queue on `pipe` what `note_page(host, bot_wall=False)` does: a real page resets the count.

        A bare EVALSHA, so that the caller's pipeline costs no SCRIPT EXISTS
        round trip: run it with `pipeline.scripts.execute(pipe, [politeness.walls_script, ...])`,
        which loads the script again when Redis lost it.
        """
        keys = self._wall_keys(host)
        pipe.execute_command("EVALSHA", self._walls.sha, len(keys), *keys,
                             0, self.wall_limit, WALLS_TTL, fetched_at, time.time())

    @property
    def walls_script(self) -> Any:
        """The bot-wall count's script, for the pipeline run that carries `clear_walls` calls."""
        return self._walls

    def note_page(self, host: str, *, bot_wall: bool, fetched_at: float | None = None) -> float:
        """Count a challenge page from `host` fetched at `fetched_at` (or clear the count on a real page).

        After `wall_limit` challenges in a row the host is paused, for
        `wall_pause` seconds doubled on every further trip without a real page
        in between (capped at 6 h). A page fetched before the last trip counts
        for nothing. Returns the pause started, or 0.
        """
        now = time.time()
        trips = int(self._walls(keys=self._wall_keys(host),
                                args=[1 if bot_wall else 0, self.wall_limit, WALLS_TTL, fetched_at or now, now]))
        if not trips:
            return 0.0
        seconds = min(self.wall_pause * 2.0 ** (trips - 1), MAX_WALL_PAUSE)
        self.pause(host, seconds, f"bot_wall x{self.wall_limit} (trip {trips})")
        return seconds

    # -- robots.txt -----------------------------------------------------------
    def robots(self, url: str, rate: float | None = None) -> RobotsVerdict:
        """Verdict for `url`; raises HostPaused when robots.txt is unavailable (RFC 9309 2.3.1.4).

        A robots.txt request takes a pacing slot like any other (at `rate`).
        """
        org = origin(url)
        parser = self._robots_parser(org, rate)
        if parser is None:
            return RobotsVerdict(True, None)
        allowed = parser.can_fetch(url, self.user_agent)
        delay = parser.crawl_delay(self.user_agent)
        return RobotsVerdict(bool(allowed), float(delay) if delay else None)

    def robots_sitemaps(self, url: str, rate: float | None = None) -> list[str]:
        """The `Sitemap:` URLs of the robots.txt of `url`'s origin (from the shared cache)."""
        from ..discover import sitemaps_from_robots

        org = origin(url)
        record = self._robots_record(org, rate)
        return sitemaps_from_robots(record["body"], org + "/") if record["state"] == "rules" else []

    def _robots_record(self, org: str, rate: float | None) -> dict[str, Any]:
        key = self.keys.robots(org)
        raw = self.r.get(key)
        if raw is None:
            self.check_paused(urlsplit(org).hostname or "")
            self.wait_turn(urlsplit(org).hostname or "", rate, None)
            record = self._fetch_robots(org)
            if record["state"] == "rules":
                delay = Protego.parse(record["body"]).crawl_delay(self.user_agent)
                if delay:
                    # the robots.txt request took a slot at the source's rate; the next one honours Crawl-delay
                    self._pace(keys=[self.keys.host_rate(urlsplit(org).hostname or "")],
                               args=[max(1, int(float(delay) * 1000)), int(self.max_wait * 1000)])
            ttl = ROBOTS_TTL if record["state"] != "unavailable" else record.get("retry_after") or ROBOTS_ERROR_TTL
            # NX: when two workers fetched it at once, the first answer stands (and its TTL)
            if not self.r.set(key, json.dumps(record), ex=int(ttl), nx=True):
                raw = self.r.get(key)
                record = json.loads(as_text(raw)) if raw is not None else record
        else:
            record = json.loads(as_text(raw))
        if record["state"] == "unavailable":
            left = self.r.ttl(key)
            raise HostPaused(f"robots.txt of {org} unavailable ({record.get('status')}); host paused",
                             reason="robots_unavailable", retry_after=float(max(left, 1)))
        return record

    def _robots_parser(self, org: str, rate: float | None = None) -> Protego | None:
        now = time.monotonic()
        cached = self._robots_local.get(org)
        if cached and cached[0] > now:
            return cached[1]
        record = self._robots_record(org, rate)
        parser = Protego.parse(record["body"]) if record["state"] == "rules" else None
        # a short in-process cache saves a Redis round trip and a parse per page
        self._robots_local[org] = (now + 60.0, parser)
        return parser

    def _fetch_robots(self, org: str) -> dict[str, Any]:
        try:
            resp = get(org + "/robots.txt", user_agent=self.user_agent,
                       limits=replace(self.limits, max_bytes=512 * 1024, deadline=min(self.limits.deadline, 15.0)))
        except PermanentFetchError as exc:
            if exc.reason in UNFETCHABLE:
                # no request may go to this origin at all (not http, private): the page is refused
                # for the same reason, not parked behind an "unavailable" robots.txt
                raise
            return {"state": "unavailable", "status": exc.reason}
        except FetchError as exc:
            page = deadline.current()
            if page is not None and page.remaining() <= 0:
                # a redirect hop's robots.txt cut short by the page's deadline: the page timed out,
                # and robots.txt is asked again next time rather than recorded as unavailable
                raise TransientFetchError("deadline exceeded fetching robots.txt for a redirect hop",
                                          reason="timeout") from exc
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
    def interval_ms(self, rate: float | None, crawl_delay: float | None) -> int:
        """Milliseconds between two requests to a host: the source's rate, lowered by Crawl-delay."""
        rps = rate or self.default_rate
        if crawl_delay:
            rps = min(rps, 1.0 / crawl_delay)
        return max(1, int(1000.0 / rps))

    def wait_turn(self, host: str, rate: float | None, crawl_delay: float | None, *, recheck: bool = False) -> float:
        """Block until this process may send a request to `host`, or raise HostPaused to park.

        Returns the seconds waited (0 when the slot was free at once); `recheck`
        as in `sleep_for_slot`.
        """
        wait_ms = int(self._pace(keys=[self.keys.host_rate(host)],
                                 args=[self.interval_ms(rate, crawl_delay), int(self.max_wait * 1000)]))
        return self.sleep_for_slot(host, wait_ms, recheck=recheck)

    def sleep_for_slot(self, host: str, wait_ms: int, *, recheck: bool = True) -> float:
        """Act on a slot reservation's reply: park (HostPaused) when the slot was too far, else sleep until it.

        With `recheck`, a host that was paused while we slept (Retry-After,
        bot walls) raises HostPaused. Returns the seconds waited.
        """
        if wait_ms < 0:
            raise HostPaused(f"host {host} busy for {-wait_ms / 1000:.1f}s", reason="host_busy",
                             retry_after=-wait_ms / 1000.0)
        exchange = deadline.current()  # a redirect hop's turn: the page's deadline bounds the wait too
        if wait_ms and exchange is not None and wait_ms / 1000.0 >= exchange.remaining():
            raise HostPaused(f"host {host} busy for {wait_ms / 1000:.1f}s, past the fetch's deadline",
                             reason="host_busy", retry_after=wait_ms / 1000.0)
        if wait_ms:
            time.sleep(wait_ms / 1000.0)
            if recheck:
                self.check_paused(host)
        return wait_ms / 1000.0
