"""Per-source activity over the last hour, from snapshots of the metrics hash.

The pipeline already counts every page in one Redis hash (`keys.metrics()`,
written in the same round trip as the page's other writes), but those
counters only ever grow. `wire serve` therefore stores a snapshot of the
per-source totals once a minute in a sorted set (score: time) and the
console shows *now minus the oldest snapshot at most an hour old*. Nothing
in the pipeline changes and no per-page write is added.

What that means for a reader:

- the window is as long as snapshots go back: a console that started 20
  minutes ago shows 20 minutes, and says so (`window_seconds`);
- snapshots are only taken while some `wire serve` runs (several replicas
  share one snapshot per minute through a `SET NX` guard);
- a counter that went down (metrics hash deleted) is read as a reset: the
  delta is the current value.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import redis

from ..keys import ACTIVITY_GUARD_TTL, ACTIVITY_TTL, Keys
from ..metrics import read_samples

HOUR = 3600.0
SNAPSHOT_EVERY = 60.0
COLUMNS = ("fetched", "published", "duplicates", "failures")


def snapshots_key(prefix: str) -> str:
    return Keys(prefix=prefix).activity_snapshots()


def guard_key(prefix: str, minute: int) -> str:
    return Keys(prefix=prefix).activity_guard(minute)


def _failed_fetch(status: str) -> bool:
    # 2xx and 304 are pages we got; everything else (4xx, 5xx, timeouts, robots...) is a failure
    return not (status.startswith("2") or status == "304")


def totals(samples: Any) -> dict[str, dict[str, float]]:
    """Per-source running totals of the console's four columns, from `metrics.read_samples` (pure)."""
    out: dict[str, dict[str, float]] = {}

    def add(source: str, column: str, value: float) -> None:
        row = out.setdefault(source, dict.fromkeys(COLUMNS, 0.0))
        row[column] += value

    for name, labels, value in samples:
        source = labels.get("source")
        if source is None:
            continue
        if name == "wire_pages_fetched_total":
            add(source, "fetched", value)
            if _failed_fetch(labels.get("status", "")):
                add(source, "failures", value)
        elif name == "wire_items_published_total":
            add(source, "published", value)
        elif name == "wire_duplicates_total":
            add(source, "duplicates", value)
        elif name == "wire_extract_failures_total":
            add(source, "failures", value)
    return out


def delta(now_totals: dict[str, dict[str, float]], then: dict[str, dict[str, float]]) -> dict[str, dict[str, int]]:
    """Per-source counts between two snapshots; a counter that went down counts as reset (pure)."""
    out: dict[str, dict[str, int]] = {}
    for source, row in now_totals.items():
        old = then.get(source, {})
        out[source] = {}
        for column in COLUMNS:
            cur, prev = row.get(column, 0.0), old.get(column, 0.0)
            out[source][column] = int(cur - prev if cur >= prev else cur)
    return out


@dataclass(frozen=True)
class Activity:
    counts: dict[str, dict[str, int]]
    window_seconds: float  # how far back the counts really go (0: no snapshot yet)


def snapshot(client: redis.Redis, prefix: str, metrics_key: str, now: float) -> bool:
    """Store the current per-source totals once per minute (across processes); True if this call stored it."""
    minute = int(now // SNAPSHOT_EVERY)
    if not client.set(guard_key(prefix, minute), 1, nx=True, ex=ACTIVITY_GUARD_TTL):
        return False
    doc = json.dumps({"t": now, "totals": totals(read_samples(client, metrics_key))}, sort_keys=True)
    key = snapshots_key(prefix)
    pipe = client.pipeline(transaction=False)
    pipe.zadd(key, {doc: now})
    pipe.zremrangebyscore(key, "-inf", now - ACTIVITY_TTL)
    pipe.expire(key, ACTIVITY_TTL)
    pipe.execute()
    return True


def last_hour(client: redis.Redis, prefix: str, metrics_key: str, now: float) -> Activity:
    """Counts since the oldest snapshot no older than an hour (see the module docstring)."""
    current = totals(read_samples(client, metrics_key))
    oldest: Any = client.zrangebyscore(snapshots_key(prefix), now - HOUR, "+inf", start=0, num=1)
    if not oldest:
        return Activity({s: dict.fromkeys(COLUMNS, 0) for s in current}, 0.0)
    doc = json.loads(oldest[0])
    return Activity(delta(current, doc["totals"]), max(0.0, now - float(doc["t"])))
