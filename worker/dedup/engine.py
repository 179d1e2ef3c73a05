"""`Dedup`: fingerprint (pure) -> lookup (Redis, read-only) -> decide (pure)
-> commit (Redis: record + publish in one script), retried on conflict.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import fields
from typing import Any

import redis

from ..keys import DEDUP_WINDOW
from ..urls import url_key
from .decide import Thresholds, decide
from .fingerprint import fingerprint
from .models import Decision, Doc
from .record import Story
from .store import DedupError, Store

MAX_ATTEMPTS = 20  # conflicts need a racing commit on the same keys; 20 in a row means something is wrong

Publish = Callable[[Decision], Sequence[tuple[str, dict[str, str]]]]


def url_identity(url: str) -> str:
    """The URL identity dedup keys on: `urls.url_key` (www., scheme, AMP, slash folded)."""
    try:
        return url_key(url)
    except Exception:  # a URL the canonicaliser rejects still deserves a stable identity
        return url.strip()


class Dedup:
    def __init__(
        self,
        client: redis.Redis,
        namespace: str,
        *,
        window_seconds: int = DEDUP_WINDOW,
        **thresholds: float,
    ) -> None:
        known = {f.name for f in fields(Thresholds)}
        unknown = set(thresholds) - known
        if unknown:
            raise TypeError(f"unknown dedup thresholds: {sorted(unknown)}")
        self.thresholds = Thresholds(**thresholds)
        self.store = Store(client, namespace, window_seconds)

    def submit(
        self,
        doc: Doc,
        *,
        now: float,
        publish: Publish | None = None,
        maxlen: int | None = None,
    ) -> Decision:
        """Decide, record and (for new/update) publish `doc`, atomically."""
        fp = fingerprint(doc.body)
        uid = url_identity(doc.url)
        for _ in range(MAX_ATTEMPTS):
            view = self.store.lookup(uid, fp)
            decision = decide(uid, fp, view.url_story_id, view.hash_story_id, view.stories, self.thresholds)
            published = decision.event in ("new", "update")
            entries = list(publish(decision)) if publish is not None and published else []
            stored = Story.of(decision.story_id, decision.version, doc.url, fp) if published else None
            entry = _log_entry(doc, decision, now)
            if self.store.commit(view, fp, decision, entry, stored, entries, maxlen):
                return decision
        raise DedupError(f"dedup: {MAX_ATTEMPTS} conflicting attempts for {doc.url!r}")

    def explain(self, url: str) -> list[dict[str, Any]]:
        """Decisions recorded for this canonical URL, oldest first."""
        return [e for e in self.history(url) if e.get("url") == url]

    def history(self, url: str) -> list[dict[str, Any]]:
        """Every decision of the story this URL belongs to (versions and aliases), oldest first."""
        sid = self.store.story_of_url(url_identity(url))
        return self.store.log(sid) if sid else []


def _log_entry(doc: Doc, d: Decision, now: float) -> dict[str, Any]:
    return {
        "time": round(now, 3),
        "url": doc.url,
        "event": d.event,
        "story_id": d.story_id,
        "version": d.version,
        "kind": d.kind,
        "similarity": round(d.similarity, 4),
        "matched_url": d.matched_url,
        "rule": d.rule,
        "content_hash": d.content_hash,
    }
