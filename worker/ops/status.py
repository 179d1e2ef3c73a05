"""What `wire status`, `GET /status`, `/healthz` and the metric gauges report.

Read-only views over Redis. Celery's Redis transport keeps a queue's
priority levels in separate lists (`fetch`, `fetch\\x06\\x163`, ...); depth
is the sum of all of them (celery-exporter misses these: its issue #272).
"""

from __future__ import annotations

import time
from typing import Any

import redis

from ..keys import BROKER_UNACKED, Keys, as_text
from ..queue import liveness, outage
from ..queue.app import QUEUES
from ..queue.broker import OWNER_KEY
from ..settings import Settings, SourcesConfig
from ..urls import redact_text

PRIORITY_SEP = "\x06\x16"
PRIORITY_STEPS = (0, 3, 6, 9)
SCHEMA = 1


def queue_lists(queue: str) -> list[str]:
    return [queue] + [f"{queue}{PRIORITY_SEP}{p}" for p in PRIORITY_STEPS if p]


def queue_depths(client: redis.Redis) -> dict[str, int]:
    pipe = client.pipeline(transaction=False)
    for q in QUEUES:
        for name in queue_lists(q):
            pipe.llen(name)
    counts = pipe.execute()
    per = len(PRIORITY_STEPS)
    return {q: int(sum(counts[i * per:(i + 1) * per])) for i, q in enumerate(QUEUES)}


def stream_info(client: redis.Redis, stream: str) -> dict[str, Any]:
    length = int(client.xlen(stream))
    groups: list[dict[str, Any]] = []
    try:
        for g in client.xinfo_groups(stream):
            name = g["name"].decode() if isinstance(g["name"], bytes) else g["name"]
            lag = g.get("lag")
            groups.append({"group": name, "pending": int(g.get("pending", 0)),
                           "lag": int(lag) if lag is not None else None,
                           "consumers": int(g.get("consumers", 0))})
    except redis.ResponseError:
        pass  # no such stream yet
    return {"stream": stream, "length": length, "groups": groups}


def _text(value: Any) -> str | None:
    if value is None:
        return None
    return value.decode() if isinstance(value, bytes) else str(value)


def collect(client: redis.Redis, keys: Keys, sources: SourcesConfig | None, settings: Settings,
            *, now: float | None = None) -> dict[str, Any]:
    """The status document (schema documented in docs/contract.md, `schema: 1`)."""
    now = time.time() if now is None else now
    streams = [keys.items_stream] + ([r.stream for r in sources.routes] if sources else [])
    out: dict[str, Any] = {
        "schema": SCHEMA,
        "time": now,
        "queues": queue_depths(client),
        "in_flight": int(client.hlen(BROKER_UNACKED)),
        "streams": [stream_info(client, s) for s in dict.fromkeys(streams)],
        "dead_letters": int(client.xlen(keys.dead_stream)),
        "parked": int(client.zcard(keys.parked())),
        "counters": {as_text(k): int(float(v)) for k, v in client.hgetall(keys.stats()).items()},
        "workers": {},
        "sources": [],
        # how full Redis is: out of memory (noeviction) it refuses every write and wire waits
        "redis": outage.memory(client).to_json(),
    }
    # the processes consuming now, by their heartbeat, and what dead ones left for the reaper
    out.update(liveness.consumers(client, keys, OWNER_KEY))
    for queue, ts in client.hgetall(keys.heartbeat()).items():
        out["workers"][as_text(queue)] = {"last_task_at": float(ts), "age_seconds": round(now - float(ts), 1)}
    for source in (sources.sources if sources else ()):
        state = {as_text(k): as_text(v) for k, v in client.hgetall(keys.source_state(source.name)).items()}
        last_success = float(state["last_success"]) if "last_success" in state else None
        out["sources"].append({
            "name": source.name,
            "interval_seconds": source.interval,
            "last_discovery": float(state["last_discovery"]) if "last_discovery" in state else None,
            "last_success": last_success,
            "stale": last_success is None or now - last_success > 3 * source.interval,
            "discovered": int(state.get("discovered", 0)),
            "errors": int(state.get("errors", 0)),
            # redacted again: a value stored before redaction-at-write still shows no credentials
            "last_error": redact_text(state["last_error"]) if "last_error" in state else None,
        })
    return out


def health(client: redis.Redis, keys: Keys, settings: Settings, *, now: float | None = None) -> tuple[bool, str]:
    """Healthy when Redis answers and every queue with work has been consumed recently.

    A Celery worker can stay alive yet stop consuming after a Redis reconnect
    (celery#8030, #9054); a process check cannot see that, consumption can.
    """
    now = time.time() if now is None else now
    try:
        client.ping()
        memory = outage.memory(client)
        depths = queue_depths(client)
        beats = {as_text(k): float(v) for k, v in client.hgetall(keys.heartbeat()).items()}
        started = client.get(keys.started())
    except redis.RedisError as exc:
        return False, f"redis unreachable: {type(exc).__name__}"
    if memory.oom:
        return False, f"redis out of memory: {memory.describe()}: writes refused, work waits"
    since = float(started) if started else now
    for queue, depth in depths.items():
        if depth == 0:
            continue
        last = max(beats.get(queue, 0.0), since)
        if now - last > settings.health_window:
            return False, f"queue {queue} has {depth} waiting and nothing consumed for {now - last:.0f}s"
    return True, "ok"
