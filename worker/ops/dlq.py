"""The dead-letter stream: list, show, replay at the failed stage, purge."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import redis

from ..keys import Keys


def _decode(fields: dict[bytes, bytes]) -> dict[str, str]:
    return {k.decode(): v.decode(errors="replace") for k, v in fields.items()}


def entries(client: redis.Redis, keys: Keys, *, count: int = 100, ids: list[str] | None = None) -> list[dict[str, Any]]:
    """Dead letters, oldest first (or just `ids`)."""
    out = []
    if ids:
        raw: list[Any] = []
        for entry_id in ids:
            raw.extend(client.xrange(keys.dead_stream, entry_id, entry_id) or [])
    else:
        raw = list(client.xrange(keys.dead_stream, count=count) or [])
    for entry_id, fields in raw:
        doc = _decode(fields)
        doc["id"] = entry_id.decode()
        out.append(doc)
    return out


def stage_replayer(enqueue_fetch: Callable[[dict[str, Any], bool], None],
                   enqueue_process: Callable[[dict[str, Any]], None]) -> Callable[[str, dict[str, Any]], None]:
    """`replay(stage, payload)`: a process-stage letter goes back to the process queue, any other
    one is fetched again with force (its validators may belong to the failed attempt)."""

    def replay_one(stage: str, payload: dict[str, Any]) -> None:
        if stage == "process":
            enqueue_process(payload)
        else:
            enqueue_fetch(payload, True)

    return replay_one


def replay(client: redis.Redis, keys: Keys, ids: list[str] | None,
           enqueue: Callable[[str, dict[str, Any]], None]) -> list[str]:
    """Re-enqueue dead letters at the stage that failed, then delete them; `ids=None` means all.

    Enqueue comes before delete so a crash in between replays twice (dedup
    absorbs that) rather than losing the item.
    """
    done = []
    for entry in entries(client, keys, count=100_000, ids=ids):
        payload = json.loads(entry.get("payload") or "{}")
        stage = entry.get("stage", "fetch")
        if stage == "process" and not client.exists(payload.get("page_key", "")):
            # the stored page expired: start again from the fetch
            stage, payload = "fetch", {"url": entry["url"], "source": entry["source"]}
        enqueue(stage, payload)
        client.xdel(keys.dead_stream, entry["id"])
        done.append(entry["id"])
    return done


def purge(client: redis.Redis, keys: Keys) -> int:
    count = int(client.xlen(keys.dead_stream))
    client.delete(keys.dead_stream)
    return count
