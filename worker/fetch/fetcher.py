"""Fetching one URL politely: pause check, robots.txt, shared pacing, conditional GET,
status classification. Returns a `Page` (the frozen border value) or `NotModified`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import redis

from ..errors import HostPaused, PermanentFetchError, TransientFetchError
from ..keys import CONDITIONAL_TTL, SKIP_TTL, TIMEOUTS_TTL, Keys, as_text
from ..models import Page
from ..settings import Settings
from .http import TRANSIENT_STATUS, Limits, Response, get
from .politeness import PACE_FUNCTION, Politeness, host_of, parse_retry_after

HTML_TYPES = {"text/html", "application/xhtml+xml", "application/xml+xhtml"}
FEED_TYPES = HTML_TYPES | {
    "application/rss+xml", "application/atom+xml", "application/xml", "text/xml", "application/rdf+xml",
    "application/feed+json", "application/json", "application/x-gzip", "application/gzip",
    "application/octet-stream", "text/plain",
}
# A page refused for one of these reasons would be refused again: remember it
# (SKIP_TTL) so a re-discovery or re-ingest does not download 30 MB or a PDF again.
STICKY_SKIPS = frozenset({"not_html", "too_large", "redirect_loop", "too_many_redirects", "bad_encoding"})

# Fetches of one host that run into the deadline in a row, with no answer
# from the host in between, before the host (not only each URL) is paused.
TIMEOUTS_BEFORE_HOST_PAUSE = 3

# Everything a page's first request waits on, in one round trip: the host's
# pause, an earlier permanent skip of the URL (ARGV[3] = '1'), the pacing
# slot, the validators for a conditional GET (ARGV[4] = '1') and the host's
# deadlines in a row. A paused host or a skipped URL takes no slot. Replies:
# {'paused', pttl ms}, {'skip', reason}, {'busy', -wait ms},
# {'go', wait ms, etag, last_modified, timeouts}.
_BEFORE_GET_LUA = PACE_FUNCTION + """
local pause = redis.call('PTTL', KEYS[1])
if pause > 0 then
  return {'paused', pause}
end
if ARGV[3] == '1' then
  local reason = redis.call('GET', KEYS[3])
  if reason then
    return {'skip', reason}
  end
end
local wait = pace(KEYS[2], tonumber(ARGV[1]), tonumber(ARGV[2]))
if wait < 0 then
  return {'busy', wait}
end
local v = {false, false}
if ARGV[4] == '1' then
  v = redis.call('HMGET', KEYS[4], 'etag', 'last_modified')
end
return {'go', wait, v[1], v[2], tonumber(redis.call('GET', KEYS[5]) or '0')}
"""

# A fetch of the host ran into the deadline: one more in a row (KEYS[1]), kept ARGV[1] seconds.
_TIMED_OUT_LUA = """
local n = redis.call('INCR', KEYS[1])
redis.call('EXPIRE', KEYS[1], ARGV[1])
return n
"""


@dataclass(frozen=True)
class NotModified:
    url: str


class Fetcher:
    def __init__(self, client: redis.Redis, keys: Keys, settings: Settings) -> None:
        self.r = client
        self.keys = keys
        self.user_agent = settings.user_agent
        self.limits = Limits.from_settings(settings)
        self.politeness = Politeness(client, keys, user_agent=settings.user_agent, limits=self.limits,
                                     default_rate=settings.default_rate, wall_limit=settings.bot_wall_limit,
                                     wall_pause=settings.bot_wall_pause)
        self._before_get = client.register_script(_BEFORE_GET_LUA)
        self._timed_out = client.register_script(_TIMED_OUT_LUA)

    def fetch(self, url: str, *, rate: float | None = None, kind: str = "page",
              conditional: bool = True, now: float | None = None, max_wait: float | None = None) -> Page | NotModified:
        """Fetch `url` (kind `page` must be HTML; `feed` covers feeds and sitemaps).

        Raises HostPaused (park and retry when due), TransientFetchError
        (retry with backoff) or PermanentFetchError (skip or dead-letter).
        With `conditional` (the default), a page skipped for good earlier is
        refused again without a request. `max_wait` (seconds) is how long to
        wait for the host's pacing slot before HostPaused(host_busy); the
        politeness default when None.
        """
        host = host_of(url)
        validators_key = self.keys.conditional(url) if kind == "page" else self.keys.feed_validators(url)
        # robots.txt first (cached in this process): a denied URL takes no pacing slot
        verdict = self.politeness.robots(url, rate)
        if not verdict.allowed:
            raise PermanentFetchError("disallowed by robots.txt", reason="robots_denied")
        ask_sticky = conditional and kind == "page"
        reply = self._before_get(
            keys=[self.keys.host_pause(host), self.keys.host_rate(host), self.keys.skip(url), validators_key,
                  self.keys.host_timeouts(host)],
            args=[self.politeness.interval_ms(rate, verdict.crawl_delay),
                  int((self.politeness.max_wait if max_wait is None else max_wait) * 1000),
                  int(ask_sticky), int(conditional)])
        state = as_text(reply[0])
        if state == "paused":
            self.politeness.raise_if_paused(host, int(reply[1]))  # raises: the script saw a positive PTTL
        if state == "skip":
            reason = as_text(reply[1])
            raise PermanentFetchError(f"skipped earlier ({reason}); not requested again", reason=reason)
        # parks a URL whose slot is too far ('busy'); after a wait, re-checks the pause
        # (Retry-After or bot walls may have paused the host meanwhile)
        self.politeness.sleep_for_slot(host, int(reply[1]))
        headers = {"Accept": "text/html,application/xhtml+xml;q=0.9,*/*;q=0.5" if kind == "page"
                   else "application/rss+xml,application/atom+xml,application/feed+json,application/xml;q=0.9,*/*;q=0.5"}
        etag, last_modified = reply[2], reply[3]  # the 'go' reply; nil when not stored or not asked
        if etag:
            headers["If-None-Match"] = as_text(etag)
        if last_modified:
            headers["If-Modified-Since"] = as_text(last_modified)
        try:
            resp = get(url, user_agent=self.user_agent, limits=self.limits, headers=headers,
                       before_hop=lambda hop: self._before_hop(hop, rate))
            if int(reply[4]):  # the host answered: its deadlines are no longer in a row
                self.r.delete(self.keys.host_timeouts(host))
            return self._classify(resp, kind, now if now is not None else time.time())
        except PermanentFetchError as exc:
            if kind == "page" and exc.reason in STICKY_SKIPS:
                self.r.set(self.keys.skip(url), exc.reason, ex=SKIP_TTL)
            raise
        except TransientFetchError as exc:
            if exc.reason == "timeout" and not isinstance(exc, HostPaused):
                self._deadline_exceeded(host, exc)
            raise

    def _deadline_exceeded(self, host: str, exc: TransientFetchError) -> None:
        """A fetch of `host` took the whole deadline: wait one deadline before this URL is asked again,
        and pause the host too when it has answered nothing since its last TIMEOUTS_BEFORE_HOST_PAUSE.

        One slow URL (a page that drips its headers) says nothing about the
        host's other pages: pausing the host for it held every story of a
        site behind one hostile URL, again at each of its retries. A host
        that takes the whole deadline for fetch after fetch would take it for
        each of its URLs, one thread each: pausing it parks them together
        (the task layer groups a paused host's URLs) and frees the threads.
        """
        deadline = self.limits.deadline
        exc.retry_after = max(exc.retry_after or 0.0, deadline)
        in_a_row = int(self._timed_out(keys=[self.keys.host_timeouts(host)], args=[TIMEOUTS_TTL]))
        if in_a_row >= TIMEOUTS_BEFORE_HOST_PAUSE:
            self.politeness.pause(host, deadline, f"deadline exceeded {in_a_row} times in a row")

    def _before_hop(self, url: str, rate: float | None) -> None:
        """A redirect target is a new request: same pause, robots.txt and pacing rules."""
        host = host_of(url)
        self.politeness.check_paused(host)
        verdict = self.politeness.robots(url, rate)
        if not verdict.allowed:
            raise PermanentFetchError("redirected to a path disallowed by robots.txt", reason="robots_denied")
        self.politeness.wait_turn(host, rate, verdict.crawl_delay, recheck=True)

    def _classify(self, resp: Response, kind: str, now: float) -> Page | NotModified:
        status = resp.status
        if status == 304:
            return NotModified(resp.url)
        if status in TRANSIENT_STATUS:
            retry_after = parse_retry_after(resp.headers.get("retry-after"), now)  # finite, capped
            if retry_after is not None and status in (429, 503):
                self.politeness.pause(host_of(resp.final_url), retry_after, f"retry-after {status}")
            raise TransientFetchError(f"HTTP {status}", reason=f"http_{status}", status=status,
                                      retry_after=retry_after)
        if status in (404, 410):
            raise PermanentFetchError(f"HTTP {status}", reason="not_found" if status == 404 else "gone",
                                      status=status)
        if status in (401, 403, 451):
            raise PermanentFetchError(f"HTTP {status}", reason="forbidden", status=status)
        if not 200 <= status < 300:
            raise PermanentFetchError(f"HTTP {status}", reason=f"http_{status}", status=status)
        ctype = resp.content_type
        allowed = HTML_TYPES if kind == "page" else FEED_TYPES
        if ctype and ctype not in allowed and not ctype.endswith("+xml"):
            raise PermanentFetchError(f"content type {ctype} is not fetched as {kind}", reason="not_html",
                                      status=status)
        return Page(
            url=resp.url,
            final_url=resp.final_url,
            status=status,
            content=resp.content,
            content_type=ctype,
            charset=resp.charset,
            etag=resp.headers.get("etag"),
            last_modified=resp.headers.get("last-modified"),
            fetched_at=now,
        )

    def remember(self, url: str, etag: str | None, last_modified: str | None, *, kind: str = "page",
                 pipe: Any = None) -> None:
        """Store the validators for the next conditional GET (only after the page was handled).

        With `pipe`, the writes are queued on the caller's pipeline (the caller executes it).
        """
        key = self.keys.conditional(url) if kind == "page" else self.keys.feed_validators(url)
        mapping: dict[Any, Any] = {k: v for k, v in (("etag", etag), ("last_modified", last_modified)) if v}
        if not mapping:
            return
        own = pipe is None
        if own:
            pipe = self.r.pipeline(transaction=False)
        pipe.hset(key, mapping=mapping)
        pipe.expire(key, CONDITIONAL_TTL)
        if own:
            pipe.execute()
