"""Consumers that prove they are alive, and a reaper that gives a dead one's messages to the living.

Redis has no acks: kombu records each message a consumer takes in its `unacked` hash and,
left to itself, restores it only after the visibility timeout (1,800 s here). wire's
transport (`worker/broker.py`) also names the taker of every record, in the `unacked_owner`
hash (delivery tag -> the owner's heartbeat key), in the same Lua script that takes the
message. So a dead consumer is found by its liveness, not by the age of its messages.

- **Heartbeat.** Every process that consumes keeps `<prefix>:consumer:<host>:<pid>:<token>`
  alive: SET with a TTL of `CONSUMER_TTL` (15 s), refreshed every `BEAT_EVERY` (3 s) from a
  thread of its own, so it beats while tasks run. Its first beat is written before its first
  take, and the take refuses to record a message for an owner whose key is gone: a consumer
  frozen past its TTL beats again before it takes anything more. A prefork worker's consumer
  is its parent process (it takes, holds and acks every message; a child killed mid-task is
  rejected and requeued by the parent), so the children need no heartbeat of their own.
- **Reaper.** Every consumer, every `REAP_EVERY` (5 s), lists the records whose owner's key is
  gone (`FIND_DEAD`) and restores each with the transport's restore script, which checks in
  the same atomic step that the record is unchanged, still names that owner and that the
  owner's key is still gone: two reapers never restore one message twice, and an owner that
  beats again in between keeps its message. A reaper reaps only once its own heartbeat has
  held for a whole TTL (`Streak`): after Redis was unreachable (every key may have expired
  meanwhile) or after its own freeze, the living get one TTL to beat again before anyone is
  judged dead. A crash is thus recovered within TTL + `REAP_EVERY` (20 s) by any live
  consumer, restarted or not.
- **Slow is not dead.** Age plays no part: a consumer that holds a message for minutes (a host
  paced at one request a minute) keeps it for as long as it beats.
- **Frozen, then back.** A consumer frozen (SIGSTOP, a long GC pause, a partition) past its TTL
  loses its messages to the living. When it wakes it may still finish the tasks it held: its
  acks and rejects are owner-checked, so they are no-ops on records it no longer owns (the
  same delivery tag may name another consumer's record by then), and what it publishes is a
  dedup duplicate.
- **Last resort.** The visibility timeout still restores any record older than it, whoever
  owns it: a consumer whose heartbeat thread lives on while its event loop is stuck.

Each restore is logged (`task restored`: task, id, queue, old owner, reason) and counted in
`wire_tasks_recovered_total{queue,reason}`.
"""

from __future__ import annotations

import atexit
import json
import os
import secrets
import socket
import threading
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from ..keys import BEAT_EVERY, CONSUMER_TTL, Keys, as_text
from ..logs import get_logger
from ..metrics import MetricsBatch

REAP_EVERY = 5.0  # seconds between two looks for dead owners, in every consumer
HEARTBEAT_SOCKET_TIMEOUT = 5.0  # a beat blocked longer gives up: the next one is 3 s away, the key lives 15 s
STEADY_BEAT = CONSUMER_TTL / 2  # a reaper whose last beat is older than this may have been frozen

log = get_logger("wire.liveness")

# Records whose owner's heartbeat key is gone: a flat list of tag, owner. KEYS: the unacked owner
# hash. ARGV: the caller's own heartbeat key (skipped). The owner keys are read from the hash, not
# passed in KEYS: kombu's Redis transport does not run on Redis Cluster anyway.
FIND_DEAD = """
local rows = redis.call('HGETALL', KEYS[1])
local alive, out = {}, {}
for i = 1, #rows, 2 do
  local owner = rows[i + 1]
  if owner ~= ARGV[1] then
    if alive[owner] == nil then alive[owner] = redis.call('EXISTS', owner) == 1 end
    if not alive[owner] then
      out[#out + 1] = rows[i]
      out[#out + 1] = owner
    end
  end
end
return out
"""

@dataclass(frozen=True)
class Restored:
    """One message put back on its queue, and why."""

    tag: str
    task: str
    task_id: str
    queue: str
    owner: str  # the heartbeat key of the consumer that held it
    reason: str  # heartbeat_expired, visibility_timeout, requeued (by its own consumer) or shutdown


_identity: tuple[int, str] | None = None
_name: str | None = None


def process_identity() -> str:
    """This process's consumer identity: host, pid and a random token (pids repeat across containers)."""
    global _identity
    if _identity is None or _identity[0] != os.getpid():
        _identity = (os.getpid(), f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}")
    return _identity[1]


def name_process(name: str) -> None:
    """The name this process's heartbeat shows (`wire status`), e.g. Celery's node name `fetch@host`."""
    global _name
    _name = name


@dataclass
class Streak:
    """An unbroken run of successful beats (monotonic seconds).

    A reaper may judge others only when its own run has lasted a whole TTL (everyone alive
    has beaten since) and its last beat is recent (it was not itself frozen in between).
    """

    since: float | None = None
    last: float | None = None

    def beat(self, now: float, *, lapsed: bool, ttl: float) -> None:
        """A successful beat; `lapsed`: the key had expired (or been deleted) before it."""
        if lapsed or self.since is None or self.last is None or now - self.last > ttl:
            self.since = now
        self.last = now

    def broken(self) -> None:
        self.since = None

    def steady(self, now: float, *, settle: float, recent: float) -> bool:
        return (self.since is not None and self.last is not None
                and now - self.since >= settle and now - self.last <= recent)


class Heartbeat:
    """This process's proof of life in one Redis: a key with a short TTL, refreshed from a thread."""

    def __init__(self, client: redis.Redis, keys: Keys, *, identity: str | None = None,
                 ttl: int = CONSUMER_TTL, every: float = BEAT_EVERY, settle: float | None = None) -> None:
        self.client = client
        self.prefix = keys.prefix
        self.key = keys.consumer(identity or process_identity())
        self.index = keys.consumers()
        self.ttl, self.every = ttl, every
        self.settle = float(ttl) if settle is None else settle
        self.pid = os.getpid()
        self.queues: set[str] = set()
        self.started_at = time.time()
        self.streak = Streak()
        self._lock = threading.Lock()
        self._failing = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def document(self) -> str:
        return json.dumps({"name": _name or f"pid {self.pid}", "host": socket.gethostname(), "pid": self.pid,
                           "queues": sorted(self.queues), "started": self.started_at}, sort_keys=True)

    def beat(self) -> bool:
        """Refresh the key now; False when Redis did not answer."""
        with self._lock:
            try:
                pipe = self.client.pipeline(transaction=True)
                pipe.exists(self.key)
                pipe.set(self.key, self.document(), ex=self.ttl)
                pipe.zadd(self.index, {self.key: time.time()})
                existed = bool(pipe.execute()[0])
            except redis.RedisError as exc:
                self.streak.broken()
                if not self._failing:
                    log.warning("heartbeat failed", consumer=self.key, error=f"{type(exc).__name__}: {exc}")
                self._failing = True
                return False
            now = time.monotonic()
            gap = None if self.streak.last is None else now - self.streak.last
            if not existed and gap is not None:
                # frozen or cut off for longer than the TTL: a reaper may have restored our messages;
                # we may still finish the tasks we hold, but their acks are no-ops and dedup drops
                # what they publish again
                log.warning("heartbeat lapsed: messages held may have been restored to other consumers",
                            consumer=self.key, gap_seconds=round(gap, 1))
            elif self._failing:
                log.info("heartbeat back", consumer=self.key)
            self._failing = False
            self.streak.beat(now, lapsed=not existed, ttl=self.ttl)
            return True

    def steady(self, now: float | None = None) -> bool:
        """Whether this consumer may judge others dead (see `Streak`)."""
        now = time.monotonic() if now is None else now
        return self.streak.steady(now, settle=self.settle, recent=STEADY_BEAT)

    def start(self) -> Heartbeat:
        """Beat once now (before the first take), then every `every` seconds from a daemon thread."""
        if self._thread is None:
            self.beat()
            self._thread = threading.Thread(target=self._run, name="wire-heartbeat", daemon=True)
            self._thread.start()
            atexit.register(self.stop)
        return self

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            try:
                self.beat()
            except Exception:  # the thread must outlive any bug in one beat, or the key lapses
                log.exception("heartbeat error", consumer=self.key)

    def stop(self, forget: bool = True) -> None:
        """Stop beating; `forget` deletes the key, so reapers restore whatever is left at once."""
        if os.getpid() != self.pid:
            return  # a forked child's copy: the parent's heartbeat is not the child's to stop
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(HEARTBEAT_SOCKET_TIMEOUT)
        if forget:
            try:
                pipe = self.client.pipeline(transaction=True)
                pipe.delete(self.key)
                pipe.zrem(self.index, self.key)
                pipe.execute()
            except redis.RedisError:
                pass  # the key expires by itself


_heartbeats: dict[tuple[Any, ...], Heartbeat] = {}
_registry = threading.Lock()


def _forget_after_fork() -> None:
    global _registry
    _heartbeats.clear()  # the parent's beat threads did not come along
    _registry = threading.Lock()


os.register_at_fork(after_in_child=_forget_after_fork)


def heartbeat_for(connparams: dict[str, Any], prefix: str) -> Heartbeat:
    """This process's running heartbeat in the Redis that `connparams` (a kombu channel's) point at."""
    target = tuple(connparams.get(k) for k in ("host", "port", "path", "db")) + (prefix,)
    with _registry:
        beat = _heartbeats.get(target)
        if beat is None:
            params = dict(connparams)
            for name in ("socket_timeout", "socket_connect_timeout"):
                if name in params:
                    params[name] = min(params[name] or HEARTBEAT_SOCKET_TIMEOUT, HEARTBEAT_SOCKET_TIMEOUT)
            # no retries inside a beat (redis-py retries 10 times with backoff by default): the next
            # beat is a few seconds away, and a beat blocked for a minute would let the key lapse
            params["retry"] = Retry(NoBackoff(), 0)
            client = redis.Redis(connection_pool=redis.ConnectionPool(**params))
            beat = _heartbeats[target] = Heartbeat(client, Keys.for_prefix(prefix)).start()
    return beat


def find_dead(client: redis.Redis, owner_hash: str, own_key: str) -> list[tuple[str, str]]:
    """(delivery tag, owner key) of every record whose owner's heartbeat is gone."""
    flat = client.register_script(FIND_DEAD)(keys=[owner_hash], args=[own_key], client=client)
    return [(as_text(flat[i]), as_text(flat[i + 1])) for i in range(0, len(flat), 2)]


_counters: tuple[int, str, redis.Redis | None] | None = None  # (pid, URL, client) of the counters' Redis


def count_in(url: str | None) -> None:
    """Where `wire_tasks_recovered_total` is counted: the Redis of wire's state and metrics
    (WIRE_REDIS_URL), which is not the broker's when WIRE_BROKER_URL points elsewhere."""
    global _counters
    _counters = (os.getpid(), url, None) if url else None


def _counters_client(broker: redis.Redis) -> redis.Redis:
    global _counters
    if _counters is None:
        return broker
    pid, url, client = _counters
    if client is None or pid != os.getpid():
        client = redis.Redis.from_url(url, socket_timeout=HEARTBEAT_SOCKET_TIMEOUT,
                                      socket_connect_timeout=HEARTBEAT_SOCKET_TIMEOUT)
        _counters = (os.getpid(), url, client)
    return client


def count(client: redis.Redis, prefix: str, batch: MetricsBatch) -> None:
    """Add `batch` to wire's counters, in the Redis of its state and metrics (see `count_in`)."""
    try:
        batch.flush(_counters_client(client), Keys.for_prefix(prefix).metrics())
    except redis.RedisError as exc:
        log.warning("broker events not counted", error=f"{type(exc).__name__}: {exc}")


def report(client: redis.Redis, prefix: str, restored: Iterable[Restored]) -> None:
    """A log line per restored message and `wire_tasks_recovered_total{queue,reason}`."""
    restored = list(restored)
    if not restored:
        return
    batch = MetricsBatch()
    consumer = Keys.for_prefix(prefix).consumer("")
    for r in restored:
        emit = log.info if r.reason == "shutdown" else log.warning
        emit("task restored", task=r.task, task_id=r.task_id, queue=r.queue,
             owner=r.owner.removeprefix(consumer), reason=r.reason)
        batch.inc("wire_tasks_recovered_total", queue=r.queue, reason=r.reason)
    try:
        batch.flush(_counters_client(client), Keys.for_prefix(prefix).metrics())
    except redis.RedisError as exc:
        log.warning("restored tasks not counted", error=f"{type(exc).__name__}: {exc}")


def prune(client: redis.Redis, keys: Keys, *, older_than: float = 4 * CONSUMER_TTL) -> int:
    """Drop consumers whose heartbeat is gone from the listing index; how many."""
    stale = [as_text(m) for m in client.zrangebyscore(keys.consumers(), "-inf", time.time() - older_than)]
    if not stale:
        return 0
    pipe = client.pipeline(transaction=False)
    for member in stale:
        pipe.exists(member)
    gone = [m for m, alive in zip(stale, pipe.execute(), strict=True) if not alive]
    if gone:
        client.zrem(keys.consumers(), *gone)
    return len(gone)


def consumers(client: redis.Redis, keys: Keys, owner_hash: str) -> dict[str, Any]:
    """Live consumers with their heartbeat age and in-flight count, and how many messages
    belong to consumers whose heartbeat is gone (restored at the next reap)."""
    members = [as_text(m) for m in client.zrange(keys.consumers(), 0, -1)]
    pipe = client.pipeline(transaction=False)
    for member in members:
        pipe.get(member)
        pipe.pttl(member)
    replies = pipe.execute() if members else []
    held = Counter(as_text(o) for o in client.hvals(owner_hash))
    prefix = keys.consumer("")
    live: list[dict[str, Any]] = []
    for member, raw, pttl in zip(members, replies[::2], replies[1::2], strict=True):
        if raw is None or pttl is None or pttl < 0:
            continue
        try:
            doc = json.loads(raw)
        except ValueError:
            doc = {}
        live.append({
            "consumer": member.removeprefix(prefix),
            "name": doc.get("name"),
            "host": doc.get("host"),
            "pid": doc.get("pid"),
            "queues": doc.get("queues", []),
            "heartbeat_age_seconds": round(max(0.0, CONSUMER_TTL - pttl / 1000), 1),
            "in_flight": held.get(member, 0),
        })
    alive = {c["consumer"] for c in live}
    others = [o for o in held if o.removeprefix(prefix) not in alive]
    pipe = client.pipeline(transaction=False)
    for owner in others:
        pipe.exists(owner)
    exists = pipe.execute() if others else []
    waiting = sum(held[o] for o, e in zip(others, exists, strict=True) if not e)
    return {"consumers": sorted(live, key=lambda c: (str(c["name"]), c["consumer"])), "awaiting_recovery": waiting}
