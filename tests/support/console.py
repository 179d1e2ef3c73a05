"""What the console tests show: two sources (one stale), stories with copies, hostile text, dead letters."""

from __future__ import annotations

import time
from typing import Any

from worker.console import activity
from worker.dedup import Doc
from worker.metrics import MetricsBatch
from worker.pipeline.deps import Deps
from worker.publish import dead_letter, stream_fields

SOURCES = """sources:
- name: fresh
  feeds: [https://fresh.example.com/feed]
  interval: 5m
- name: stale
  feeds: [https://stale.example.org/rss]
  interval: 1m
"""
HOSTILE = '<script>alert("x")</script><img src=x onerror=alert(1)>'


def publish_story(deps: Deps, url: str, title: str, body: str, source: str = "fresh",
                  now: float | None = None) -> Any:
    """Run a document through dedup exactly as the pipeline does, publishing new/update events."""
    now = time.time() if now is None else now

    def publish(decision: Any) -> list[tuple[str, dict[str, str]]]:
        item = {"schema_version": 1, "id": f"{decision.story_id}-{decision.version}", "event": decision.event,
                "story_id": decision.story_id, "version": decision.version, "url": url, "canonical_url": url,
                "source": source, "title": title, "authors": ["A. Writer"], "agency": "AP", "dateline": "LONDON",
                "published_at": "2024-05-01T10:00:00Z", "modified_at": None, "language": "en", "body": body,
                "word_count": len(body.split()), "content_hash": "h", "fetched_at": "2024-05-01T10:01:00Z"}
        return [(deps.keys.items_stream, stream_fields(item))]

    return deps.dedup.submit(Doc(url, title, body), now=now, publish=publish)


def seed(deps: Deps, now: float) -> dict[str, Any]:
    """Two sources (one stale), a story with a copy, hostile titles, two dead letters, a host pause."""
    r = deps.redis
    r.hset(deps.keys.source_state("fresh"), mapping={"last_discovery": now - 30, "last_success": now - 30})
    r.hset(deps.keys.source_state("stale"), mapping={"last_discovery": now - 600, "last_success": now - 3600,
                                                     "errors": 4, "last_error": "HTTP 503 from feed"})
    r.set(deps.keys.host_pause("stale.example.org"), "robots_unavailable", px=250_000)
    body = "\n".join(f"Paragraph {i} of a long wire story about the harbour strike and its effects on trade."
                     for i in range(12))
    publish_story(deps, "https://fresh.example.com/news/strike", "Harbour strike spreads", body, now=now - 100)
    publish_story(deps, "https://stale.example.org/copy/strike", "Harbour strike spreads (copy)", body,
                  source="stale", now=now - 90)
    publish_story(deps, "https://fresh.example.com/news/evil", HOSTILE, "A body with <b>tags</b> & ampersands. "
                  * 20, now=now - 80)
    r.xgroup_create(deps.keys.items_stream, "archive", id="0")
    r.xreadgroup("archive", "archiver-1", {deps.keys.items_stream: ">"}, count=1)  # 1 pending, 1 not delivered
    ids = [dead_letter(r, deps.keys, stage="fetch", reason="timeout", error=f"ReadTimeout {HOSTILE}",
                       url=f"https://fresh.example.com/dead/{i}", source="fresh",
                       payload={"url": f"https://fresh.example.com/dead/{i}", "source": "fresh"}, attempts=3,
                       now=now - 50)
           for i in range(2)]
    activity.snapshot(r, deps.keys.prefix, deps.keys.metrics(), now - 1800)  # as a running `wire serve` does
    batch = MetricsBatch()
    batch.inc("wire_pages_fetched_total", 7, source="fresh", status="200")
    batch.inc("wire_pages_fetched_total", 2, source="fresh", status="503")
    batch.inc("wire_items_published_total", 5, source="fresh", event="new")
    batch.inc("wire_duplicates_total", 1, source="stale", kind="exact")
    batch.flush(r, deps.keys.metrics())
    return {"dead": ids}
