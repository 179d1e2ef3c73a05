"""`delivery.redis_down`: which failures hand a task back to the queue instead of failing it (and losing it)."""

from __future__ import annotations

import pytest
import redis

from worker.errors import DedupError, TransientFetchError
from worker.queue.delivery import redis_down


def _raised(fn) -> BaseException:  # type: ignore[no-untyped-def]
    try:
        fn()
    except BaseException as exc:  # noqa: BLE001 - the point is to capture it
        return exc
    raise AssertionError("nothing raised")


def _wrapped() -> None:
    try:
        raise redis.ConnectionError("Connection refused")
    except redis.RedisError as exc:
        raise DedupError(f"dedup lookup failed: {exc}") from exc


def _during_handling() -> None:
    try:
        raise redis.TimeoutError("Timeout reading from socket")
    except redis.RedisError:
        raise RuntimeError("while logging the failure") from None


def _context_only() -> None:
    try:
        raise redis.ConnectionError("gone")
    except redis.RedisError:
        raise KeyError("page_key")  # noqa: B904 - implicit chaining is what is tested


@pytest.mark.parametrize(
    ("exc", "down"),
    [
        (redis.ConnectionError("Connection refused"), True),
        (redis.TimeoutError("Timeout"), True),
        (redis.BusyLoadingError("LOADING Redis is loading the dataset in memory"), True),
        (_raised(_wrapped), True),  # DedupError raised from a ConnectionError
        (_raised(_context_only), True),  # raised while handling one
        (_raised(_during_handling), False),  # `from None`: the Redis error was dealt with
        (redis.ResponseError("WRONGTYPE"), False),  # Redis answered: a bug, not an outage
        (TransientFetchError("HTTP 503", reason="http_503"), False),
        (ValueError("bad page"), False),
    ],
)
def test_redis_down(exc: BaseException, down: bool) -> None:
    assert redis_down(exc) is down
