"""Small helpers shared by tests: polling with a deadline, settings for a test run."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
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
    """The shipped settings with the test's Redis and key prefix, loopback sites allowed, and `overrides`
    (``WIRE_`` variables)."""
    env = {
        "WIRE_REDIS_URL": redis_url,
        "WIRE_KEY_PREFIX": prefix,
        "WIRE_ALLOW_PRIVATE_ADDRESSES": "true",
    }
    env.update({k: str(v) for k, v in overrides.items()})
    return Settings.from_env(env)


test_settings.__test__ = False  # type: ignore[attr-defined]  # not a test, despite the name


def http_get(url: str, timeout: float = 5.0) -> tuple[int, str]:
    """GET `url`: (status, body text); (0, error) when nothing answered (refused, reset, timeout)."""
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return resp.status, resp.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode("utf-8", "replace")
    except (OSError, ValueError) as exc:  # URLError, ConnectionError, timeouts, a half-written answer
        return 0, f"{type(exc).__name__}: {exc}"


@dataclass(frozen=True)
class Sample:
    sent: float  # time.monotonic() when the request was sent
    done: float  # ... and when its answer (or error) arrived
    status: int  # 0: no HTTP answer at all
    reason: str  # the body (the JSON of /healthz names the reason)


class HealthPoller(threading.Thread):
    """GETs `url` every `interval` seconds in the background, keeping every answer with its timing."""

    def __init__(self, url: str, interval: float = 0.1) -> None:
        super().__init__(daemon=True)
        self.url = url
        self.interval = interval
        self.samples: list[Sample] = []
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.is_set():
            sent = time.monotonic()
            status, body = http_get(self.url)
            self.samples.append(Sample(sent, time.monotonic(), status, body.strip()))
            self._stop_event.wait(self.interval)

    def halt(self) -> None:
        self._stop_event.set()
        if self.is_alive():
            self.join(10)

    def first(self, match: Callable[[Sample], bool], after: float) -> Sample | None:
        """The first sample sent at or after `after` that `match`es."""
        return next((s for s in list(self.samples) if s.sent >= after and match(s)), None)


# ----------------------------------------------------------------------------- processes, through /proc


def _stat_fields(pid: int | str) -> list[str] | None:
    """The fields of /proc/PID/stat after the command name (None once the process is gone)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def children_map() -> dict[int, list[int]]:
    """Parent pid -> its live children, for every process."""
    out: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (fields := _stat_fields(entry)) is not None:
            out.setdefault(int(fields[1]), []).append(int(entry))
    return out


def children(pid: int) -> list[int]:
    """The live direct children of `pid`."""
    return children_map().get(pid, [])


def descendants(pid: int) -> set[int]:
    """Every live process below `pid` (children may start new sessions)."""
    kids = children_map()
    out: set[int] = set()
    todo = [pid]
    while todo:
        for child in kids.get(todo.pop(), []):
            out.add(child)
            todo.append(child)
    return out


def cpu_ticks(pid: int) -> int:
    """utime + stime of a process, in clock ticks (0 once it is gone)."""
    fields = _stat_fields(pid)
    return int(fields[11]) + int(fields[12]) if fields else 0
