"""Read Redis into the plain dicts the views render (no HTML here)."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlsplit

import redis

from .. import trail
from ..keys import as_text
from ..models import Source
from ..ops import status
from ..pipeline.deps import Deps
from . import activity

RECENT = 50
DEAD_PAGE = 100


def source_hosts(source: Source) -> list[str]:
    """Hosts a source's discovery documents live on (where a pause stops it)."""
    urls = list(source.feeds) + list(source.sitemaps) + [lst.url for lst in source.listings]
    return list(dict.fromkeys(h for h in ((urlsplit(u).hostname or "") for u in urls) if h))


def overview(deps: Deps, now: float) -> dict[str, Any]:
    """The status document plus, per source, the last hour's counts and the host pauses in force."""
    doc = status.collect(deps.redis, deps.keys, deps.sources, deps.settings, now=now)
    act = activity.last_hour(deps.redis, deps.keys.prefix, deps.keys.metrics(), now)
    hosts = {s.name: source_hosts(s) for s in deps.sources.sources}
    pipe = deps.redis.pipeline(transaction=False)
    flat = [h for hs in hosts.values() for h in hs]
    for h in flat:
        pipe.pttl(deps.keys.host_pause(h))
        pipe.get(deps.keys.host_pause(h))
    replies = pipe.execute() if flat else []
    pauses = {}
    for i, h in enumerate(flat):
        ms, reason = replies[2 * i], replies[2 * i + 1]
        if ms and ms > 0:
            pauses[h] = {"host": h, "seconds_left": ms / 1000.0, "reason": as_text(reason) if reason else ""}
    for src in doc["sources"]:
        src["activity"] = act.counts.get(src["name"], dict.fromkeys(activity.COLUMNS, 0))
        src["pauses"] = [pauses[h] for h in hosts.get(src["name"], []) if h in pauses]
    doc["activity_window"] = act.window_seconds
    return doc


def _item(entry_id: Any, fields: Any) -> dict[str, Any]:
    f = {as_text(k): as_text(v) for k, v in (fields or {}).items()}
    try:
        data = json.loads(f.get("data") or "{}")
    except ValueError:
        data = {}
    if not isinstance(data, dict):
        data = {}
    eid = as_text(entry_id)
    return {"entry_id": eid, "time": int(eid.split("-", 1)[0]) / 1000.0, "event": f.get("event", ""),
            "story_id": f.get("story_id", ""), "version": f.get("version", ""), "item": data}


def recent_stories(deps: Deps, count: int = RECENT) -> list[dict[str, Any]]:
    return [_item(i, f) for i, f in deps.redis.xrevrange(deps.keys.items_stream, count=count) or []]


def story(deps: Deps, entry_id: str) -> dict[str, Any] | None:
    """One published event with its story's dedup log (versions and copies), this URL's decisions
    and its path through wire (its trail)."""
    try:
        raw: Any = deps.redis.xrange(deps.keys.items_stream, entry_id, entry_id)
    except redis.ResponseError:  # a malformed id is a 404, not a 503
        return None
    if not raw:
        return None
    out = _item(*raw[0])
    item = out["item"]
    dd = deps.dedup
    story_id = out["story_id"] or str(item.get("story_id", ""))
    out["log"] = dd.store.log(story_id) if story_id else []
    canonical = str(item.get("canonical_url") or item.get("url") or "")
    out["decisions"] = dd.explain(canonical) if canonical else []
    fetched = str(item.get("url") or canonical)
    out["trail"] = trail.read(deps.redis, deps.keys, fetched).events if fetched else []
    return out


def dead_letters(deps: Deps, after: str | None = None, count: int = DEAD_PAGE) -> dict[str, Any]:
    """One page of dead letters, oldest first, starting after entry `after`."""
    total = int(deps.redis.xlen(deps.keys.dead_stream))
    # same decoding as dlq.entries, but one XRANGE with a start for paging
    start = f"({after}" if after else "-"
    try:
        raw: Any = deps.redis.xrange(deps.keys.dead_stream, start, "+", count=count + 1) or []
    except redis.ResponseError:
        raise ValueError(f"not a stream entry id: {after!r}") from None
    rows = []
    for entry_id, fields in raw:
        doc = {as_text(k): v.decode(errors="replace") if isinstance(v, bytes) else str(v) for k, v in (fields or {}).items()}
        doc["id"] = as_text(entry_id)
        rows.append(doc)
    more = len(rows) > count
    rows = rows[:count]
    return {"total": total, "entries": rows, "next": rows[-1]["id"] if more and rows else None}
