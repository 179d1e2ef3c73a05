"""`wire status` (readable or JSON) and `wire health` (the container health check)."""

from __future__ import annotations

import json
import sys
from typing import Any

import click
import redis

from .common import open_deps, ops_settings, read_sources


@click.command()
@click.option("--json", "as_json", is_flag=True, help="the documented JSON document")
def status(as_json: bool) -> None:
    """Queues, streams, dead letters, sources and workers."""
    from .. import status as st

    settings = ops_settings()
    sources = read_sources(settings)
    deps = open_deps(settings, sources)
    try:
        doc = st.collect(deps.redis, deps.keys, sources, settings)
    except redis.RedisError as exc:
        click.echo(f"redis unreachable at {settings.redis_url}: {exc}", err=True)
        sys.exit(1)
    if as_json:
        click.echo(json.dumps(doc, sort_keys=True, indent=2))
        return
    click.echo(render_status(doc))


def render_status(doc: dict[str, Any]) -> str:
    now = doc["time"]

    def age(ts: float | None) -> str:
        return "never" if ts is None else f"{now - ts:.0f}s ago"

    lines = ["QUEUE        DEPTH"]
    lines += [f"{q:<12} {n:>5}" for q, n in doc["queues"].items()]
    lines.append(f"in flight: {doc['in_flight']}   parked: {doc['parked']}   dead letters: {doc['dead_letters']}")
    lines.append("")
    lines.append("STREAM                 LENGTH  GROUP                PENDING    LAG")
    for s in doc["streams"]:
        if not s["groups"]:
            lines.append(f"{s['stream']:<22} {s['length']:>6}")
        for g in s["groups"]:
            lines.append(f"{s['stream']:<22} {s['length']:>6}  {g['group']:<20} {g['pending']:>7} {g['lag']!s:>6}")
    lines.append("")
    lines.append("SOURCE               INTERVAL  LAST DISCOVERY   LAST SUCCESS     ERRORS  STALE")
    for src in doc["sources"]:
        lines.append(f"{src['name']:<20} {src['interval_seconds']:>7.0f}s  {age(src['last_discovery']):<16} "
                     f"{age(src['last_success']):<16} {src['errors']:>6}  {'STALE' if src['stale'] else ''}")
    lines.append("")
    counters = doc["counters"]
    lines.append("totals: " + " ".join(f"{k}={counters.get(k, 0)}" for k in
                                       ("discovered", "fetched", "published", "duplicates", "skipped", "failed")))
    workers = ", ".join(f"{q} {w['age_seconds']:.0f}s ago" for q, w in doc["workers"].items()) or "none seen"
    lines.append(f"last task finished: {workers}")
    lines.append("")
    lines.append("CONSUMER                  QUEUES                PID  HEARTBEAT  IN FLIGHT")
    for c in doc["consumers"]:
        lines.append(f"{str(c['name'])[:25]:<25} {','.join(c['queues'])[:20]:<20} {c['pid']!s:>5}  "
                     f"{c['heartbeat_age_seconds']:>4.0f}s ago {c['in_flight']:>10}")
    if not doc["consumers"]:
        lines.append("none alive")
    lines.append(f"awaiting recovery (held by consumers whose heartbeat expired): {doc['awaiting_recovery']}")
    lines.append(_render_redis_memory(doc["redis"]))
    return "\n".join(lines)


def _render_redis_memory(mem: dict[str, Any]) -> str:
    used = f"{mem['used_memory'] / 1048576:.1f} MiB"
    limit = f"{mem['maxmemory'] / 1048576:.1f} MiB" if mem["maxmemory"] else "no limit"
    state = "OUT OF MEMORY: writes refused, work waits" if mem["oom"] else "ok"
    return (f"redis memory: {used} of {limit} ({mem['maxmemory_policy']}), {state}; "
            f"writes refused since start: {mem['oom_errors']}")


@click.command()
def health() -> None:
    """Exit 0 when Redis answers and queued work is being consumed, 1 otherwise (container health check)."""
    from .. import status as st

    settings = ops_settings()
    deps = open_deps(settings, read_sources(settings))
    ok, why = st.health(deps.redis, deps.keys, settings)
    click.echo(why)
    sys.exit(0 if ok else 1)
