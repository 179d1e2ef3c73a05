"""Fixed-window rate limits in Redis, shared by every `wire serve` replica.

Count first, then compare: one MULTI increments the window's counter and
sets its expiry, and the caller compares the count it got back. A check
before the increment (what the console did) lets a burst through: a
hundred guesses sent at once all read "9 so far" before any of them counts.
"""

from __future__ import annotations

from dataclasses import dataclass

import redis


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    count: int  # events counted in this window, this one included
    retry_after: int  # seconds until the window ends


def window_of(now: float, window: int) -> int:
    return int(now // window)


def hit(client: redis.Redis, key: str, limit: int, window: int, now: float) -> Verdict:
    """Count one event under `key` (a per-window key, see `Keys.rate_limit`) and say whether it is within `limit`."""
    pipe = client.pipeline(transaction=True)
    pipe.incr(key)
    pipe.expire(key, window * 2)
    count = int(pipe.execute()[0])
    left = (window_of(now, window) + 1) * window - now
    return Verdict(allowed=count <= limit, count=count, retry_after=max(1, int(left + 0.999)))


def forgive(client: redis.Redis, key: str) -> None:
    """Take back one counted event (a login that turned out right is not a guess)."""
    client.decr(key)
