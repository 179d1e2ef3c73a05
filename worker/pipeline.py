"""The three stages as plain functions: discover, fetch, process. No Celery here.

Tasks, the CLI and tests call these with JSON-shaped inputs and a `Deps`
holding the Redis client, settings and sources. Each returns an outcome with
a reason; the task layer only decides about retries and dead letters.

Crash safety (acks_late redelivers any task whose worker died):
- discover marks URLs seen only after their fetch tasks are enqueued, so a
  crash re-discovers (and dedup absorbs the double) instead of losing them;
- fetch stores the page bytes under a fresh key and enqueues process; the
  conditional-GET validators are saved by process only after the story is
  decided, so a crash between the two never turns the retry into a 304;
- process is idempotent: dedup decides and publishes in one Redis script, and
  a re-run of the same page is a `url` duplicate that publishes nothing.
"""

from __future__ import annotations

import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from redis import Redis

from . import discover as disc
from .dedup import Decision, Dedup, Doc
from .errors import FetchError, PermanentFetchError, WorkerError
from .extract import extract
from .fetch import Fetcher, NotModified
from .keys import PAGE_TTL, SEEN_TTL, Keys, as_text
from .logs import get_logger
from .metrics import MetricsBatch
from .models import Candidate, Outcome, Page, Source
from .publish import build_item, stream_fields, streams_for
from .settings import Settings, SourcesConfig
from .urls import BadURL, canonicalize, choose_canonical

log = get_logger("wire.pipeline")

MAX_SITEMAP_FETCHES = 25  # per source per run: an index can list thousands of children
SITEMAP_MAX_AGE = 3 * 86400.0  # sitemap entries with an older lastmod are not fetched
SOURCE_URL_LOG_MAX = 50_000  # discovered URLs remembered per source for `reingest --since`


@dataclass
class Deps:
    settings: Settings
    redis: Redis
    sources: SourcesConfig
    keys: Keys
    _fetcher: Fetcher | None = field(default=None, repr=False)
    _dedup: Dedup | None = field(default=None, repr=False)

    @classmethod
    def create(cls, settings: Settings, sources: SourcesConfig, client: Redis | None = None) -> Deps:
        client = client or Redis.from_url(
            settings.redis_url or settings.broker, socket_timeout=30, socket_connect_timeout=10,
            socket_keepalive=True, retry_on_timeout=True, health_check_interval=30)
        return cls(settings=settings, redis=client, sources=sources,
                   keys=Keys.for_prefix(settings.key_prefix, settings.items_stream))

    @property
    def fetcher(self) -> Fetcher:
        if self._fetcher is None:
            self._fetcher = Fetcher(self.redis, self.keys, self.settings)
        return self._fetcher

    @property
    def dedup(self) -> Dedup:
        if self._dedup is None:
            self._dedup = Dedup(self.redis, self.keys.dedup_ns(), window_seconds=int(self.settings.dedup_window))
        return self._dedup

    def source(self, name: str) -> Source:
        found = self.sources.get(name)
        if found is None:
            raise PermanentFetchError(f"unknown source {name!r}", reason="unknown_source")
        return found


# ----------------------------------------------------------------------------- discover

@dataclass(frozen=True)
class DiscoverReport:
    source: str
    found: int
    new: list[Candidate]
    errors: list[str]


def discover(source_name: str, deps: Deps, enqueue: Callable[[Candidate], None], *,
             now: float | None = None) -> DiscoverReport:
    """Read every feed, sitemap and listing of a source and enqueue the URLs not seen before."""
    now = time.time() if now is None else now
    source = deps.source(source_name)
    entries: list[disc.Entry] = []
    errors: list[str] = []
    fetches = 0

    def load(url: str) -> bytes | None:
        nonlocal fetches
        fetches += 1
        try:
            got = deps.fetcher.fetch(url, rate=source.rate, kind="feed")
        except (FetchError, WorkerError) as exc:
            errors.append(f"{url}: {exc}")
            return None
        if isinstance(got, NotModified):
            return None
        pending_validators.append((url, got))
        return got.content

    pending_validators: list[tuple[str, Page]] = []
    for url in source.feeds:
        data = load(url)
        if data is not None:
            try:
                entries.extend(disc.parse_feed(data, url))
            except WorkerError as exc:
                errors.append(f"{url}: {exc}")
    queue = list(source.sitemaps)
    while queue and fetches < MAX_SITEMAP_FETCHES + len(source.feeds):
        url = queue.pop(0)
        data = load(url)
        if data is None:
            continue
        try:
            sitemap = disc.parse_sitemap(data, url)
        except WorkerError as exc:
            errors.append(f"{url}: {exc}")
            continue
        entries.extend(disc.filter_recent(sitemap.entries, now, SITEMAP_MAX_AGE))
        queue.extend(sitemap.sitemaps)
    for listing in source.listings:
        data = load(listing.url)
        if data is not None:
            try:
                entries.extend(disc.parse_listing(data, listing.url, listing.links))
            except WorkerError as exc:
                errors.append(f"{listing.url}: {exc}")

    candidates: dict[str, Candidate] = {}
    marks: dict[str, str] = {}
    for entry in entries:
        try:
            url = canonicalize(entry.url)
        except (BadURL, ValueError):
            continue
        if url in candidates or not source.accepts(url):
            continue
        candidates[url] = Candidate(url=url, source=source.name, title=entry.title, published=entry.published)
        marks[url] = entry.lastmod or "1"
    urls = list(candidates)
    seen_values = deps.redis.mget([deps.keys.seen(u) for u in urls]) if urls else []
    new: list[Candidate] = []
    for url, seen in zip(urls, seen_values, strict=True):
        # a sitemap lastmod that moved means the page changed: fetch it again (conditionally)
        if seen is None or (marks[url] != "1" and as_text(seen) != marks[url]):
            new.append(candidates[url])
    for cand in new:
        enqueue(cand)
    pipe = deps.redis.pipeline(transaction=False)
    for cand in new:
        pipe.set(deps.keys.seen(cand.url), marks[cand.url], ex=SEEN_TTL)
    if new:
        log_key = deps.keys.source_urls(source.name)
        pipe.zadd(log_key, {c.url: now for c in new})
        pipe.zremrangebyscore(log_key, "-inf", now - SEEN_TTL)
        pipe.zremrangebyrank(log_key, 0, -SOURCE_URL_LOG_MAX - 1)
    state = deps.keys.source_state(source.name)
    pipe.hset(state, mapping={"last_discovery": now, "discovered_last": len(new)})
    pipe.hincrby(state, "discovered", len(new))
    if errors:
        pipe.hincrby(state, "errors", len(errors))
        pipe.hset(state, "last_error", errors[-1][:500])
    documents = len(source.feeds) + len(source.sitemaps) + len(source.listings)
    if len(errors) < max(documents, 1):
        pipe.hset(state, "last_success", now)
    pipe.hincrby(deps.keys.stats(), "discovered", len(new))
    batch = MetricsBatch()
    if new:
        batch.inc("wire_discovered_total", len(new), source=source.name)
    batch.flush_into(pipe, deps.keys.metrics())
    pipe.execute()
    for url, page in pending_validators:
        deps.fetcher.remember(url, page, kind="feed")
    return DiscoverReport(source=source.name, found=len(candidates), new=new, errors=errors)


# ----------------------------------------------------------------------------- fetch

@dataclass(frozen=True)
class Fetched:
    """Reference to fetched bytes stored in Redis, passed to the process stage as JSON."""

    ref: dict[str, Any]


def fetch(candidate: Candidate, deps: Deps, *, force: bool = False) -> Fetched | Outcome:
    """Fetch one candidate; store its bytes for the process stage.

    Raises TransientFetchError / HostPaused for the task layer to retry or park;
    permanent failures come back as an Outcome with a reason.
    """
    source = deps.source(candidate.source)
    started = time.monotonic()
    batch = MetricsBatch()
    try:
        got = deps.fetcher.fetch(candidate.url, rate=source.rate, kind="page", conditional=not force)
    except PermanentFetchError as exc:
        batch.inc("wire_pages_fetched_total", source=source.name, status=_status_label(exc))
        if exc.reason == "robots_denied":
            batch.inc("wire_robots_denied_total", source=source.name)
        batch.inc("wire_skipped_total", source=source.name, reason=exc.reason)
        pipe = deps.redis.pipeline(transaction=False)
        batch.flush_into(pipe, deps.keys.metrics())
        pipe.hincrby(deps.keys.stats(), "skipped", 1)
        pipe.execute()
        return Outcome(status="skipped", reason=exc.reason, detail={"error": str(exc)})
    except FetchError as exc:
        batch.inc("wire_pages_fetched_total", source=source.name, status=_status_label(exc))
        batch.flush(deps.redis, deps.keys.metrics())
        raise
    elapsed = time.monotonic() - started
    batch.observe("wire_fetch_seconds", elapsed, source=source.name)
    pipe = deps.redis.pipeline(transaction=False)
    if isinstance(got, NotModified):
        batch.inc("wire_pages_fetched_total", source=source.name, status="304")
        batch.flush_into(pipe, deps.keys.metrics())
        pipe.hincrby(deps.keys.stats(), "not_modified", 1)
        pipe.execute()
        return Outcome(status="not_modified", reason="not_modified")
    batch.inc("wire_pages_fetched_total", source=source.name, status=str(got.status))
    stamp = int(got.fetched_at * 1000)
    page_key = deps.keys.page(candidate.url, stamp)
    pipe.set(page_key, zlib.compress(got.content, 3), ex=PAGE_TTL)
    pipe.hincrby(deps.keys.stats(), "fetched", 1)
    batch.flush_into(pipe, deps.keys.metrics())
    pipe.execute()
    return Fetched(ref={
        "url": candidate.url,
        "source": candidate.source,
        "final_url": got.final_url,
        "page_key": page_key,
        "charset": got.charset,
        "etag": got.etag,
        "last_modified": got.last_modified,
        "fetched_at": got.fetched_at,
        "published": candidate.published,
        "force": force,
    })


def _status_label(exc: FetchError) -> str:
    return str(exc.status) if exc.status else exc.reason


# ----------------------------------------------------------------------------- process

def process(ref: dict[str, Any], deps: Deps, *, now: float | None = None) -> Outcome:
    """Extract, deduplicate and publish one fetched page."""
    now = time.time() if now is None else now
    source = deps.source(ref["source"])
    raw = deps.redis.get(ref["page_key"])
    if raw is None:
        # Already processed and cleaned up by an earlier delivery, or expired.
        return Outcome(status="skipped", reason="page_gone")
    html = zlib.decompress(raw)  # type: ignore[arg-type]  # the client returns bytes
    batch = MetricsBatch()
    started = time.perf_counter()
    article = extract(html, ref["final_url"], charset=ref.get("charset"), rules=source.rules)
    batch.observe("wire_extract_seconds", time.perf_counter() - started)

    def finish(outcome: Outcome, stat: str) -> Outcome:
        pipe = deps.redis.pipeline(transaction=False)
        batch.flush_into(pipe, deps.keys.metrics())
        pipe.hincrby(deps.keys.stats(), stat, 1)
        pipe.hset(deps.keys.heartbeat(), "process", now)
        pipe.execute()
        page = Page(url=ref["url"], final_url=ref["final_url"], status=200, content=b"",
                    content_type=None, charset=None, etag=ref.get("etag"),
                    last_modified=ref.get("last_modified"))
        deps.fetcher.remember(ref["url"], page)
        deps.redis.delete(ref["page_key"])
        return outcome

    if article.not_article or not article.body.strip():
        reason = article.not_article or "empty"
        batch.inc("wire_extract_failures_total", source=source.name, reason=reason)
        batch.inc("wire_skipped_total", source=source.name, reason=reason)
        return finish(Outcome(status="skipped", reason=reason), "skipped")

    try:
        fallback = canonicalize(ref["final_url"])
    except (BadURL, ValueError):
        fallback = ref["url"]
    canonical = choose_canonical(fallback, article.canonical_url)
    doc = Doc(url=canonical, title=article.title, body=article.body,
              published=article.published_at or ref.get("published"))

    def publish(decision: Decision) -> list[tuple[str, dict[str, str]]]:
        item = build_item(article, event=decision.event, story_id=decision.story_id,
                          version=decision.version, url=ref["url"], canonical_url=canonical,
                          source=source.name, fetched_at=float(ref["fetched_at"]), agency_hint=source.agency)
        fields = stream_fields(item)
        return [(stream, fields) for stream in streams_for(item, deps.keys.items_stream, deps.sources.routes)]

    decision = deps.dedup.submit(doc, now=now, publish=publish, maxlen=deps.settings.items_maxlen)
    if decision.event == "duplicate":
        batch.inc("wire_duplicates_total", source=source.name, kind=decision.kind or "exact")
        outcome = Outcome(status="duplicate", reason=decision.kind, event="duplicate",
                          story_id=decision.story_id, version=decision.version,
                          detail={"similarity": decision.similarity, "matched_url": decision.matched_url})
        return finish(outcome, "duplicates")
    batch.inc("wire_items_published_total", source=source.name, event=decision.event)
    deps.redis.hset(deps.keys.source_state(source.name), "last_published", now)
    outcome = Outcome(status="published", event=decision.event, story_id=decision.story_id,
                      version=decision.version, detail={"canonical_url": canonical})
    return finish(outcome, "published")
