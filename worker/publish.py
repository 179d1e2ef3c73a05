"""The published item (pure) and the dead-letter stream (I/O).

`build_item` fixes the downstream contract (docs/contract.md, schema 1); the
stream entry carries `id`, `event`, `story_id`, `version` and `data` (the
item as JSON with sorted keys) so consumers can route without parsing.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import redis

from .keys import Keys
from .logs import mask_credentials
from .metrics import MetricsBatch
from .models import SCHEMA_VERSION, Article, Route
from .trail import Trail, event

DEAD_MAXLEN = 100_000
_WORD = re.compile(r"\w+", re.UNICODE)


def iso_utc(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def content_hash(body: str) -> str:
    return hashlib.blake2b(body.encode("utf-8"), digest_size=16).hexdigest()


def event_id(story_id: str, version: int, body_hash: str) -> str:
    """Deterministic: the same story version with the same text always gets the same id."""
    return hashlib.blake2b(f"{story_id}\x00{version}\x00{body_hash}".encode(), digest_size=16).hexdigest()


def build_item(
    article: Article,
    *,
    event: str,
    story_id: str,
    version: int,
    url: str,
    canonical_url: str,
    source: str,
    fetched_at: float,
    agency_hint: str | None = None,
) -> dict[str, Any]:
    body_hash = content_hash(article.body)
    return {
        "schema_version": SCHEMA_VERSION,
        "id": event_id(story_id, version, body_hash),
        "event": event,
        "story_id": story_id,
        "version": version,
        "url": url,
        "canonical_url": canonical_url,
        "source": source,
        "title": article.title,
        "authors": list(article.authors),
        "agency": article.agency or agency_hint,
        "dateline": article.dateline,
        "published_at": article.published_at,
        "modified_at": article.modified_at,
        "language": article.language,
        "body": article.body,
        "word_count": len(_WORD.findall(article.body)),
        "content_hash": body_hash,
        "fetched_at": iso_utc(fetched_at),
    }


def stream_fields(item: dict[str, Any]) -> dict[str, str]:
    return {
        "id": item["id"],
        "event": item["event"],
        "story_id": item["story_id"],
        "version": str(item["version"]),
        "data": json.dumps(item, sort_keys=True, ensure_ascii=False, separators=(",", ":")),
    }


def streams_for(item: dict[str, Any], main_stream: str, routes: Sequence[Route]) -> list[str]:
    """Every item goes to the main stream, plus each matching route's stream once."""
    out = [main_stream]
    for route in routes:
        if route.matches(item) and route.stream not in out:
            out.append(route.stream)
    return out


def dead_letter(
    client: redis.Redis,
    keys: Keys,
    *,
    stage: str,
    reason: str,
    error: str,
    url: str | None,
    source: str | None,
    payload: dict[str, Any],
    attempts: int,
    now: float | None = None,
    trail: Trail | None = None,
    events: Sequence[dict[str, Any]] = (),
) -> str:
    """Append a failed work item to the dead-letter stream with what is needed to replay it.

    With `trail`, the URL's trail gets `events` (what led here) and the dead letter itself,
    in the same transaction.
    """
    now = now if now is not None else time.time()
    fields = {
        "stage": stage,
        "reason": reason,
        "error": mask_credentials(error)[:2000],
        "url": url or "",
        "source": source or "",
        "payload": json.dumps(payload, sort_keys=True),
        "attempts": str(attempts),
        "failed_at": iso_utc(now),
    }
    batch = MetricsBatch()
    batch.inc("wire_dead_letters_total", stage=stage)
    pipe = client.pipeline(transaction=True)
    pipe.xadd(keys.dead_stream, fields, maxlen=DEAD_MAXLEN, approximate=True)  # type: ignore[arg-type]
    batch.flush_into(pipe, keys.metrics())
    pipe.hincrby(keys.stats(), "failed", 1)
    if trail is not None and url:
        trail.add(pipe, url, *events, event("dead", now, stage=stage, reason=reason, error=error))
    entry_id = pipe.execute()[0]
    return entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id)
