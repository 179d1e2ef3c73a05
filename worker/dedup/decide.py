"""The dedup decision (pure): a document's fingerprint against the known
stories the index returned -> `Decision`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .fingerprint import Fingerprint
from .models import Decision
from .record import Story


@dataclass(frozen=True)
class Thresholds:
    """The knobs of `decide`; `Dedup(**thresholds)` overrides them by name."""

    same_containment: float = 0.5
    same_jaccard: float = 0.5


@dataclass(frozen=True)
class Match:
    """How a document compares with one stored story version."""

    story: Story
    jaccard: float
    old_in_new: float  # share of the stored version's shingles found in the document
    new_in_old: float  # share of the document's shingles found in the stored version
    new_shingles: float  # estimated number of the document's shingles the stored version lacks


def compare(fp: Fingerprint, story: Story) -> Match:
    """Estimate overlap from the stored bottom-k sketch against the document's full shingle set.

    The sketch holds the k smallest hashes of the stored set A. Every element
    of A at or below the sketch's largest hash tau is in the sketch, so among
    the document's hashes <= tau (a uniform sample of B) membership in A is
    known exactly: that sample estimates |B∩A|/|B|, and the sketch itself
    estimates |A∩B|/|A|. When A has no more than k shingles both are exact.
    """
    a, b = story.sketch, fp.hashes
    n_a, n_b = story.n_shingles, fp.n_shingles
    if n_a == 0 or n_b == 0 or a.size == 0:
        same = fp.content_hash == story.content_hash
        v = 1.0 if same else 0.0
        return Match(story, v, v, v, 0.0 if same else float(n_b))
    shared = int(np.isin(a, b, assume_unique=True).sum())
    old_in_new = shared / a.size
    if a.size >= n_a:
        inter = float(shared)
        new_in_old = inter / n_b
    else:
        sample = int(np.searchsorted(b, a[-1], side="right"))
        new_in_old = shared / sample if sample else 0.0
        inter = old_in_new * n_a
    inter = min(inter, float(n_a), float(n_b))
    union = n_a + n_b - inter
    return Match(
        story,
        jaccard=inter / union if union else 1.0,
        old_in_new=min(old_in_new, 1.0),
        new_in_old=min(new_in_old, 1.0),
        new_shingles=max(0.0, n_b * (1.0 - new_in_old)),
    )


def new_story_id(url: str, content_hash: str) -> str:
    """Deterministic, so a retried or redelivered submission proposes the same id."""
    return hashlib.blake2b(f"{url}\x00{content_hash}".encode(), digest_size=8).hexdigest()


def decide(
    url: str,
    fp: Fingerprint,
    url_story_id: str | None,
    hash_story_id: str | None,
    stories: Sequence[Story],
    th: Thresholds,
) -> Decision:
    """v1: the same canonical URL or the same normalised body is the same story."""
    by_id = {s.story_id: s for s in stories}
    url_story = by_id.get(url_story_id) if url_story_id else None
    if url_story is not None:
        if hash_story_id == url_story.story_id or url_story.content_hash == fp.content_hash:
            return _dup(url_story, "url", 1.0, "same url, same text", fp)
        return Decision(
            "update",
            url_story.story_id,
            url_story.version + 1,
            "url",
            compare(fp, url_story).jaccard,
            url_story.url,
            "same url, text changed",
            fp.content_hash,
        )
    hash_story = by_id.get(hash_story_id) if hash_story_id else None
    if hash_story is not None:
        return _dup(hash_story, "exact", 1.0, "same normalised text", fp)
    return Decision(
        "new", new_story_id(url, fp.content_hash), 1, None, 0.0, None, "no match", fp.content_hash
    )


def _dup(story: Story, kind: str, sim: float, rule: str, fp: Fingerprint) -> Decision:
    return Decision("duplicate", story.story_id, story.version, kind, sim, story.url, rule, fp.content_hash)
