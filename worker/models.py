"""Frozen values at each stage border.

Source (config) -> Candidate (discovered URL) -> Page (fetched bytes) ->
PageRef (stored bytes, fetch -> process) -> Article (extracted) -> Item
(published). A dropped page is an `Outcome` with a reason, never ``None``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

SCHEMA_VERSION = 1


@dataclass(frozen=True)
class Listing:
    url: str
    links: str  # CSS selector for article links


@dataclass(frozen=True)
class Rules:
    """Per-source extraction rules (CSS selectors and text patterns)."""

    body: str | None = None
    strip: tuple[str, ...] = ()
    strip_text: tuple[re.Pattern[str], ...] = ()


@dataclass(frozen=True)
class Source:
    name: str
    feeds: tuple[str, ...] = ()
    sitemaps: tuple[str, ...] = ()
    listings: tuple[Listing, ...] = ()
    interval: float = 300.0  # seconds
    allow: tuple[re.Pattern[str], ...] = ()
    deny: tuple[re.Pattern[str], ...] = ()
    rules: Rules = field(default_factory=Rules)
    rate: float | None = None  # requests per second per host
    agency: str | None = None

    def accepts(self, url: str) -> bool:
        """True when `url` passes the allow/deny patterns (searched, not matched)."""
        if self.deny and any(p.search(url) for p in self.deny):
            return False
        return not self.allow or any(p.search(url) for p in self.allow)


@dataclass(frozen=True)
class Route:
    """Send matching items to an extra stream as well as the main one."""

    stream: str
    source: str | None = None
    agency: str | None = None
    language: str | None = None

    def matches(self, item: dict[str, Any]) -> bool:
        return all(
            want is None or item.get(name) == want
            for name, want in (("source", self.source), ("agency", self.agency), ("language", self.language))
        )


@dataclass(frozen=True)
class Candidate:
    """A URL found by discovery, on its way to the fetch stage."""

    url: str
    source: str
    title: str | None = None
    published: str | None = None  # as the feed/sitemap gave it, ISO-8601 when parseable

    def to_json(self) -> dict[str, Any]:
        return {"url": self.url, "source": self.source, "title": self.title, "published": self.published}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Candidate:
        return cls(
            url=str(data["url"]),
            source=str(data["source"]),
            title=data.get("title"),
            published=data.get("published"),
        )


@dataclass(frozen=True)
class Page:
    """Fetched bytes: the border between fetching and parsing."""

    url: str  # as requested
    final_url: str  # after redirects
    status: int
    content: bytes
    content_type: str | None
    charset: str | None  # from the HTTP Content-Type header
    etag: str | None = None
    last_modified: str | None = None
    fetched_at: float = 0.0  # unix seconds


@dataclass(frozen=True)
class PageRef:
    """A fetched page waiting for the process stage: where its bytes are, and what process needs of the fetch.

    It travels in the process task's message as `to_json()` (JSON-only
    Celery); messages queued before this value existed carry the same keys,
    so `from_json` reads them too.
    """

    url: str  # the candidate's canonical URL, as requested
    source: str
    final_url: str  # after redirects
    page_key: str  # the Redis key of the page bytes (`fetch.page_store`)
    charset: str | None = None  # from the HTTP Content-Type header
    etag: str | None = None  # validators, saved for the next conditional GET once the page is decided
    last_modified: str | None = None
    fetched_at: float = 0.0  # unix seconds
    published: str | None = None  # as discovery found it
    force: bool = False  # fetched unconditionally (re-ingest)

    def to_json(self) -> dict[str, Any]:
        return {
            "url": self.url,
            "source": self.source,
            "final_url": self.final_url,
            "page_key": self.page_key,
            "charset": self.charset,
            "etag": self.etag,
            "last_modified": self.last_modified,
            "fetched_at": self.fetched_at,
            "published": self.published,
            "force": self.force,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> PageRef:
        return cls(
            url=str(data["url"]),
            source=str(data["source"]),
            final_url=str(data["final_url"]),
            page_key=str(data["page_key"]),
            charset=data.get("charset"),
            etag=data.get("etag"),
            last_modified=data.get("last_modified"),
            fetched_at=float(data.get("fetched_at") or 0.0),
            published=data.get("published"),
            force=bool(data.get("force", False)),
        )


@dataclass(frozen=True)
class Article:
    """What extraction gets out of one page (pure; no network, no Redis).

    `not_article` is set (to a short reason such as ``bot_wall``,
    ``login_wall``, ``section_front``, ``not_html``, ``empty``, ``too_short``) when the page
    is not an article; the other fields are then best effort.
    """

    title: str | None
    body: str
    authors: tuple[str, ...] = ()
    agency: str | None = None
    dateline: str | None = None
    published_at: str | None = None  # ISO-8601 with the offset the page states (Z: UTC or none stated)
    modified_at: str | None = None  # same form as published_at
    language: str | None = None
    canonical_url: str | None = None
    not_article: str | None = None
    furniture: tuple[str, ...] = ()  # lines dropped as the host's learned furniture (extract.furniture)

    def to_json(self) -> dict[str, Any]:
        return {
            "title": self.title,
            "authors": list(self.authors),
            "agency": self.agency,
            "dateline": self.dateline,
            "published_at": self.published_at,
            "modified_at": self.modified_at,
            "language": self.language,
            "body": self.body,
            "canonical_url": self.canonical_url,
            "not_article": self.not_article,
        }


@dataclass(frozen=True)
class Outcome:
    """How one page ended: published / duplicate / skipped / not_modified / dead."""

    status: str
    reason: str | None = None
    event: str | None = None  # new | update when published
    story_id: str | None = None
    version: int | None = None
    detail: dict[str, Any] = field(default_factory=dict)
