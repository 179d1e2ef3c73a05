"""Every Redis key wire uses, and every TTL, in one place.

All keys live under one prefix (``WIRE_KEY_PREFIX``, default ``wire``) so a
test run or a `wire dedup replay` can use its own namespace and never touch
production data. Per-URL keys use a short hash of the canonical URL: bounded
key size whatever the URL length, and no URL (which may carry credentials)
in a key.

Two families are named elsewhere, for a reason:

- the dedup namespace's inner keys are named here (``dedup_*_key``), but
  its Lua scripts (dedup/gather.lua) build the same names themselves, as a
  script must, with ``<ns>:epoch`` and the index buckets;
- the broker's keys (the Celery queues, kombu's ``unacked`` hash and index,
  the doorbells and ``unacked_malformed`` of queue/broker.py) are kombu's,
  named by the transport and not under the prefix; `BROKER_UNACKED` is the
  one wire reads itself.

`tests/unit/test_keys.py` fails when a key or a TTL is spelled out in
another module.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

DAY = 86_400

SEEN_TTL = 30 * DAY  # a discovered URL is not re-enqueued for this long
CONDITIONAL_TTL = 30 * DAY  # ETag / Last-Modified per URL
ROBOTS_TTL = DAY  # robots.txt cache
ROBOTS_ERROR_TTL = 300  # a 5xx/unreachable robots.txt pauses the host this long before re-asking
ATTEMPTS_TTL = DAY  # delivery counter for poison-page detection
PAGE_TTL = DAY  # fetched bytes waiting for the process stage
SKIP_TTL = DAY  # a page skipped for good (PDF, too large, redirect loop) is not re-requested this long
WALLS_TTL = DAY  # bot-wall circuit breaker counters per host
TIMEOUTS_TTL = 3600  # a host's fetch deadlines in a row, forgotten this long after the last one
PAUSE_LOG_MAX = 1000  # host pauses remembered for operators and tests
DEDUP_WINDOW = 14 * DAY  # default; Settings.dedup_window overrides
DECISION_LOG_MAX = 100  # decisions kept per story (the oldest give way to a count of those dropped)
TRAIL_MAX_EVENTS = 50  # events kept per URL trail (the newest); the trail expires with the dedup window
FURNITURE_TTL = 30 * DAY  # a host's learned furniture, forgotten after a month without a page from it
BEAT_LOCK_TTL = 30.0  # seconds; renewed on every tick (beat ticks at most every max_interval = 5 s)
SESSION_TTL = 8 * 3600  # a console session (and its cookie)
FLASH_TTL = 300  # a console message waiting for the next page of its session
ACTIVITY_TTL = 2 * 3600  # activity snapshots are kept (trimmed by score) and the set expires this long after
ACTIVITY_GUARD_TTL = 180  # the once-a-minute snapshot guard: three minutes covers a slow replica's clock

BROKER_UNACKED = "unacked"  # kombu's hash of delivered, unacknowledged messages (not under the prefix)
# A consumer's heartbeat key lives this long and is refreshed every BEAT_EVERY seconds: a consumer
# whose key is gone is dead (or cut off), and the messages it holds are restored to the living.
CONSUMER_TTL = 15
BEAT_EVERY = 3.0
WRITE_PROBE_TTL = 60  # the key written to learn whether Redis takes writes again (out of memory, restarted)
BROKER_MALFORMED_MAX = 1000  # payloads kept aside in queue/broker.py's `unacked_malformed` (the newest)
BROKER_MALFORMED_TTL = 30 * DAY  # ... and how long after the last one the list is kept


def as_text(value: object) -> str:
    """A Redis reply (bytes) as text."""
    return value.decode() if isinstance(value, bytes) else str(value)


def url_hash(url: str) -> str:
    """A short stable id for a URL (hex, 20 chars = 80 bits)."""
    return hashlib.blake2b(url.encode("utf-8"), digest_size=10).hexdigest()


# the dedup namespace (`Keys.dedup_ns`, or a replay's): its layout is described in dedup/store.py
def dedup_url_key(ns: str, url_id: str) -> str:
    """The story id last decided for this URL identity."""
    return f"{ns}:u:{url_hash(url_id)}"


def dedup_story_key(ns: str, story_id: str) -> bytes:
    """A story's record and decision log (the id as 8 raw bytes)."""
    return ns.encode() + b":s:" + bytes.fromhex(story_id)


def dedup_bucket_key(ns: str, bucket: bytes) -> bytes:
    """One of the near-duplicate index's bucket hashes (named by 2 raw bytes)."""
    return ns.encode() + b":i:" + bucket


@dataclass(frozen=True)
class Keys:
    prefix: str = "wire"
    items_stream: str = "wire:items"
    dead_stream: str = "wire:dead"

    @classmethod
    def for_prefix(cls, prefix: str, items_stream: str | None = None) -> Keys:
        return cls(
            prefix=prefix,
            items_stream=items_stream or f"{prefix}:items",
            dead_stream=f"{prefix}:dead",
        )

    # discovery
    def seen(self, url: str) -> str:
        return f"{self.prefix}:seen:{url_hash(url)}"

    def source_state(self, source: str) -> str:
        """Hash: last_discovery, last_success, last_error, errors, discovered."""
        return f"{self.prefix}:source:{source}"

    def source_urls(self, source: str) -> str:
        """Sorted set of URLs discovered for a source (score: discovery time), for re-ingest windows."""
        return f"{self.prefix}:source:{source}:urls"

    def feed_validators(self, url: str) -> str:
        return f"{self.prefix}:feedcond:{url_hash(url)}"

    # fetching
    def conditional(self, url: str) -> str:
        """Hash: etag, last_modified, content_hash of the last good fetch."""
        return f"{self.prefix}:cond:{url_hash(url)}"

    def robots(self, origin: str) -> str:
        return f"{self.prefix}:robots:{origin}"

    def host_rate(self, host: str) -> str:
        return f"{self.prefix}:rate:{host}"

    def host_pause(self, host: str) -> str:
        return f"{self.prefix}:pause:{host}"

    def host_timeouts(self, host: str) -> str:
        """Fetches of a host that ran into the deadline in a row, without an answer from it in between."""
        return f"{self.prefix}:timeouts:{host}"

    def skip(self, url: str) -> str:
        """Reason a page was skipped for good (not_html, too_large...): not re-requested unless forced."""
        return f"{self.prefix}:skip:{url_hash(url)}"

    def host_walls(self, host: str) -> str:
        """Bot-challenge pages in a row from a host (the circuit breaker's count)."""
        return f"{self.prefix}:walls:{host}"

    def host_wall_trips(self, host: str) -> str:
        """Breaker trips in a row without a real page in between (the backoff exponent)."""
        return f"{self.prefix}:walltrips:{host}"

    def host_wall_tripped(self, host: str) -> str:
        """When the breaker last tripped for a host: pages fetched before then do not count."""
        return f"{self.prefix}:walltripped:{host}"

    def pauses(self) -> str:
        """List of recent host pauses (JSON: host, reason, since, until), newest first."""
        return f"{self.prefix}:pauses"

    def parked(self) -> str:
        """Sorted set of parked fetches (member: JSON candidate, score: not-before time)."""
        return f"{self.prefix}:parked"

    # processing
    def page(self, url: str, stamp: int) -> str:
        """Fetched bytes waiting for the process stage (`fetch.page_store.pack`, with a TTL)."""
        return f"{self.prefix}:page:{url_hash(url)}:{stamp}"

    def attempts(self, task_key: str) -> str:
        return f"{self.prefix}:attempts:{task_key}"

    # the path of each URL (worker/trail.py), for `wire explain`
    def trail(self, url: str) -> str:
        """List of compact JSON events about one candidate URL, oldest first (capped, expiring)."""
        return f"{self.prefix}:trail:{url_hash(url)}"

    def trail_alias(self, url: str) -> str:
        """The candidate URL whose trail another spelling (after redirects, rel=canonical) belongs to."""
        return f"{self.prefix}:trail:alias:{url_hash(url)}"

    def furniture(self, host: str) -> str:
        """Hash: the host's learned furniture, a record per line it counts (pipeline/furniture.py)."""
        return f"{self.prefix}:furniture:{host}"

    # dedup (the dedup module owns everything under this namespace)
    def dedup_ns(self) -> str:
        return f"{self.prefix}:dedup"

    def replay_ns(self, token: str) -> str:
        """A `wire dedup replay` run's own dedup namespace (deleted afterwards unless named)."""
        return f"{self.prefix}:replay:{token}"

    # counters and operations
    def stats(self) -> str:
        """Hash of pipeline-wide counters shown by the progress line."""
        return f"{self.prefix}:stats"

    def metrics(self) -> str:
        """Hash of Prometheus counter/histogram samples aggregated across processes."""
        return f"{self.prefix}:metrics"

    def heartbeat(self) -> str:
        """Hash: worker name -> last time it finished a task."""
        return f"{self.prefix}:heartbeat"

    def started(self) -> str:
        """When a worker last started (health grace period)."""
        return f"{self.prefix}:started"

    def consumer(self, identity: str) -> str:
        """A consumer's heartbeat (JSON: name, host, pid, queues, started), expiring after CONSUMER_TTL.

        The broker's `unacked_owner` hash names this key as the owner of each message the
        consumer holds, so any reaper can tell whether the owner is alive from the record alone.
        """
        return f"{self.prefix}:consumer:{identity}"

    def consumers(self) -> str:
        """Sorted set of consumer heartbeat keys (score: last beat), for listing them; not for liveness."""
        return f"{self.prefix}:consumers"

    def write_probe(self) -> str:
        """A tiny key written (with `WRITE_PROBE_TTL`) to learn whether Redis takes writes (see worker.outage)."""
        return f"{self.prefix}:probe"

    # web console (sessions), the limiters of `wire serve`, and the console's hourly activity snapshots
    def console_session(self, session_id: str) -> str:
        return f"{self.prefix}:console:session:{session_id}"

    def console_flash(self, session_id: str) -> str:
        """A message for the session's next page (set by an action, read once)."""
        return f"{self.prefix}:console:session:{session_id}:flash"

    def rate_limit(self, kind: str, who: str, window: int) -> str:
        """Counter of `kind` events (login, bearer, reingest) from client `who` (or `all`) in fixed window
        number `window` (see worker.ratelimit); it expires two windows later."""
        return f"{self.prefix}:limit:{kind}:{who}:{window}"

    def activity_snapshots(self) -> str:
        """Sorted set of per-source counter snapshots (score: time), kept two hours."""
        return f"{self.prefix}:activity:snapshots"

    def activity_guard(self, minute: int) -> str:
        """SET NX guard so replicas of `wire serve` take one snapshot per minute."""
        return f"{self.prefix}:activity:taken:{minute}"

    def beat_lock(self) -> str:
        return f"{self.prefix}:beat:lock"
