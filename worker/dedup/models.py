"""The frozen values at the dedup border: what dedup sees (`Doc`) and what it says (`Decision`)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class Doc:
    """What dedup sees of one fetched story."""

    url: str  # canonical URL
    title: str | None
    body: str
    published: str | None = None  # ISO-8601 or None
    furniture: tuple[str, ...] = ()  # lines dropped as the site's learned furniture (kept in the decision log)


@dataclass(frozen=True)
class Decision:
    """The verdict on one `Doc`, recorded for `wire explain` and published when new/update."""

    event: str  # "new" | "update" | "duplicate"
    story_id: str  # stable id shared by every copy and version
    version: int  # 1 for new; the new version for update; the story's current version for duplicate
    kind: str | None  # duplicate: url|exact|near; update: url|near; None for new
    similarity: float  # to the best-matching known copy (1.0 exact; 0.0 for new with no candidate)
    matched_url: str | None
    rule: str  # short human-readable label of the rule that fired
    content_hash: str  # of the normalised body

    def to_json(self) -> dict[str, Any]:
        return asdict(self)
