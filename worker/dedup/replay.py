"""`wire dedup replay`: run an archive of documents through the real
Redis-backed dedup, in order, and report each decision.

Time: each document's `published` stamp (when parseable) is its `now`, so
the window behaves as it would have live; otherwise the previous one is
reused.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Any

from .engine import Dedup
from .models import Doc


def parse_time(value: str | None, default: float) -> float:
    if not value:
        return default
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return default


def replay(dedup: Dedup, lines: Iterable[str]) -> Iterator[dict[str, Any]]:
    """One result dict per JSON line `{"id","url","title","body","published"}` (blank lines skipped).

    Besides the contract's `id`, `event`, `story_id`, `similarity` each line
    carries `cluster` (= story_id), the key dupbench's scorer reads.
    """
    now = 0.0
    for line in lines:
        if not line.strip():
            continue
        rec = json.loads(line)
        now = parse_time(rec.get("published"), now)
        doc = Doc(
            url=str(rec["url"]),
            title=rec.get("title"),
            body=str(rec.get("body") or ""),
            published=rec.get("published"),
        )
        d = dedup.submit(doc, now=now)
        yield {
            "id": rec.get("id"),
            "event": d.event,
            "story_id": d.story_id,
            "similarity": round(d.similarity, 4),
            # the same value under the name dupbench's scorer reads, so replay output scores as is
            "cluster": d.story_id,
        }
