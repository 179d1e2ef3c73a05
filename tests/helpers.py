"""Small helpers shared by tests: polling with a deadline, settings for a test run."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

from worker.settings import Settings

T = TypeVar("T")


def wait_for(predicate: Callable[[], T], timeout: float = 30.0, interval: float = 0.1, what: str = "condition") -> T:
    """Poll `predicate` until it returns something truthy; fail with `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def test_settings(redis_url: str, prefix: str, **overrides: object) -> Settings:
    env = {
        "WIRE_REDIS_URL": redis_url,
        "WIRE_KEY_PREFIX": prefix,
        "WIRE_ALLOW_PRIVATE_ADDRESSES": "true",
        "WIRE_FETCH_TIMEOUT": "5",
    }
    env.update({k: str(v) for k, v in overrides.items()})
    return Settings.from_env(env)


test_settings.__test__ = False  # type: ignore[attr-defined]  # not a test, despite the name
