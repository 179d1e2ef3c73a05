"""Redis outages: which errors are one, how to wait one out, and how full Redis is.

Redis is unavailable to wire when it does not answer (down, restarting,
loading its data) and also when it is out of memory: with
`maxmemory-policy noeviction` (what the compose file runs, because evicting
broker or dedup keys loses stories) a full Redis still answers reads but
refuses writes with `OOM command not allowed`. redis-py raises that as
`OutOfMemoryError`, a `ResponseError` rather than a `ConnectionError`, yet for
wire it is the same kind of event: nothing can be recorded until it ends, so
work waits and is handed back, and no process exits over it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import redis

# The text of Redis' OOM error. A script's error (Redis 6.2 wraps it in "ERR Error running script")
# and a transaction's carry it too, whatever class redis-py gives them.
OOM_TEXT = "used memory > 'maxmemory'"


def is_oom(exc: BaseException) -> bool:
    """`exc` is Redis refusing a write because it is out of memory."""
    return isinstance(exc, redis.exceptions.OutOfMemoryError) or (
        isinstance(exc, redis.ResponseError) and OOM_TEXT in str(exc))


def unavailable(exc: BaseException | None) -> bool:
    """`exc`, or an exception it was raised from, says Redis could not take the work: no answer, or OOM."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        # BusyLoadingError is a ConnectionError
        if isinstance(exc, redis.ConnectionError | redis.TimeoutError) or is_oom(exc):
            return True
        seen.add(id(exc))
        exc = exc.__cause__ if exc.__cause__ is not None else None if exc.__suppress_context__ else exc.__context__
    return False


def reason(exc: BaseException) -> str:
    """A short label for why Redis is unavailable: `out of memory`, or the error's class."""
    seen: set[int] = set()
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen:
        if is_oom(cur):
            return "out of memory"
        seen.add(id(cur))
        cur = cur.__cause__ or cur.__context__
    return type(exc).__name__


def wait_writable(probe: Callable[[], Any], timeout: float | None,
                  on_wait: Callable[[BaseException], None] | None = None, interval: float = 0.5) -> bool:
    """Call `probe` (a small write) until it succeeds; False if `timeout` seconds pass first (None: never).

    A PING is not enough: a Redis out of memory answers it and refuses every write.
    `on_wait(exc)` is called after each failed probe.
    """
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        try:
            probe()
            return True
        except redis.RedisError as exc:  # any: a start-up would rather wait, saying why, than crash-loop
            if on_wait is not None:
                on_wait(exc)
        if deadline is not None and time.monotonic() + interval > deadline:
            return False
        time.sleep(interval)


@dataclass(frozen=True)
class Memory:
    """How full Redis is (`INFO memory`) and how many writes it refused for lack of memory (`INFO errorstats`)."""

    used: int
    maximum: int  # 0: no limit
    policy: str
    not_counted: int  # replication and AOF buffers, which Redis leaves out of its maxmemory check
    oom_errors: int  # since Redis started

    @property
    def oom(self) -> bool:
        """Redis refuses writes now: over its limit (the check Redis itself makes before a write)."""
        return self.maximum > 0 and self.used - self.not_counted > self.maximum

    def to_json(self) -> dict[str, Any]:
        return {"used_memory": self.used, "maxmemory": self.maximum, "maxmemory_policy": self.policy,
                "oom": self.oom, "oom_errors": self.oom_errors}

    def describe(self) -> str:
        limit = f"maxmemory {_mb(self.maximum)}" if self.maximum else "no maxmemory"
        return f"used {_mb(self.used)} of {limit} (policy {self.policy})"


def _mb(n: int) -> str:
    return f"{n / 1048576:.1f} MiB"


def memory(client: redis.Redis) -> Memory:
    """Read `Memory` (two INFO sections in one round trip; both are reads, answered when Redis is full)."""
    pipe = client.pipeline(transaction=False)
    pipe.info("memory")
    pipe.info("errorstats")
    mem, errors = pipe.execute()
    oom = errors.get("errorstat_OOM") or {}
    return Memory(used=int(mem.get("used_memory", 0)), maximum=int(mem.get("maxmemory", 0)),
                  policy=str(mem.get("maxmemory_policy", "")), not_counted=int(mem.get("mem_not_counted_for_evict", 0)),
                  oom_errors=int(oom.get("count", 0)) if isinstance(oom, dict) else 0)


def describe(exc: BaseException, client: redis.Redis | None = None) -> str:
    """One line for a log: what is wrong with Redis, with its memory when it is full."""
    why = reason(exc)
    if why == "out of memory" and client is not None:
        try:
            return (f"out of memory: {memory(client).describe()}; writes are refused until memory is freed "
                    "or maxmemory raised")
        except redis.RedisError:
            pass
    return f"{why}: {exc}"
