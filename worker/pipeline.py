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

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from redis import Redis

from . import discover as disc
from . import page_bytes
from .dedup import Decision, Dedup, Doc
from .dedup.engine import Publish
from .errors import FetchError, PermanentFetchError, WorkerError
from .extract import extract
from .fetch import Fetcher, NotModified
from .keys import CONDITIONAL_TTL, PAGE_TTL, SEEN_TTL, Keys, as_text
from .logs import get_logger
from .metrics import MetricsBatch
from .models import Article, Candidate, Outcome, Page, Source
from .politeness import host_of
from .publish import build_item, stream_fields, streams_for
from .settings import Settings, SourcesConfig
from .urls import BadURL, canonicalize, choose_canonical, redact_text

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


def discover(source_name: str, deps: Deps, enqueue: Callable[[list[Candidate]], None], *,
             now: float | None = None) -> DiscoverReport:
    """Read every feed, sitemap and listing of a source and enqueue the URLs not seen before.

    `enqueue` gets all the new candidates in one call (the task layer batches
    them), before they are marked seen.

    - a `feeds` URL that answers HTML is a home page: the feeds it advertises
      (`<link rel="alternate">`) are read instead;
    - a `sitemaps` URL that is a site root (`https://site/` or `.../robots.txt`)
      stands for the sitemaps its robots.txt lists (`Sitemap:` lines);
    - sitemap indexes are followed to their recent children; old entries
      (lastmod or news:publication_date older than SITEMAP_MAX_AGE) are skipped;
    - every document is fetched conditionally; when a home page or an index
      answers 304, the feeds or child sitemaps found last time are read again.

    `last_success` is set only when at least one configured document was read
    (200 and parsed, or 304): a source whose discovery fails goes stale.
    """
    now = time.time() if now is None else now
    source = deps.source(source_name)
    reader = _Reader(deps, source)
    entries: list[disc.Entry] = []
    ok = 0
    for url in source.feeds:
        ok += reader.read_feed(url, entries, now)
    for url in source.sitemaps:
        if _is_site_root(url):
            try:
                roots = deps.fetcher.politeness.robots_sitemaps(url, source.rate)
            except (FetchError, WorkerError) as exc:
                reader.errors.append(f"{url}: robots.txt: {exc}")
                continue
            if not roots:
                reader.errors.append(f"{url}: robots.txt lists no Sitemap")
                continue
        else:
            roots = [url]
        ok += reader.read_sitemaps(roots, entries, now)
    for listing in source.listings:
        got = reader.load(listing.url)
        if isinstance(got, NotModified):
            ok += 1
        elif got is not None:
            try:
                entries.extend(disc.parse_listing(got.content, listing.url, listing.links))
                ok += 1
            except WorkerError as exc:
                reader.errors.append(f"{listing.url}: {exc}")
    errors = reader.errors

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
    if new:
        enqueue(new)
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
        # shown without login (/status, the console): a feed URL's credentials never stored
        pipe.hset(state, "last_error", redact_text(errors[-1])[:500])
    if ok:
        pipe.hset(state, "last_success", now)
    pipe.hincrby(deps.keys.stats(), "discovered", len(new))
    batch = MetricsBatch()
    if new:
        batch.inc("wire_discovered_total", len(new), source=source.name)
    batch.flush_into(pipe, deps.keys.metrics())
    pipe.execute()
    reader.commit()  # validators last: a crash before this re-reads the documents in full
    return DiscoverReport(source=source.name, found=len(candidates), new=new, errors=errors)


MAX_AUTODISCOVERED_FEEDS = 3  # feeds read from one home page


def _is_site_root(url: str) -> bool:
    path = urlsplit(url).path
    return path in ("", "/") or path.lower() == "/robots.txt"


class _Reader:
    """Fetches one source's discovery documents (conditionally, paced) and parses them."""

    def __init__(self, deps: Deps, source: Source) -> None:
        self.deps = deps
        self.source = source
        self.fetches = 0
        self.errors: list[str] = []
        # validators (and derived links) are saved after the candidates are enqueued
        self.pending: list[tuple[str, Page, list[str] | None]] = []

    def load(self, url: str) -> Page | NotModified | None:
        """The document, NotModified, or None after recording an error."""
        self.fetches += 1
        try:
            got = self.deps.fetcher.fetch(url, rate=self.source.rate, kind="feed")
        except (FetchError, WorkerError) as exc:
            self.errors.append(f"{url}: {exc}")
            return None
        if isinstance(got, Page):
            self.pending.append((url, got, None))
        return got

    def keep_links(self, url: str, links: list[str]) -> None:
        """Remember the feeds or child sitemaps `url` pointed to, for when it answers 304."""
        self.pending = [(u, p, links if u == url else lk) for u, p, lk in self.pending]

    def cached_links(self, url: str) -> list[str]:
        raw = self.deps.redis.hget(self.deps.keys.feed_validators(url), "links")
        return [str(u) for u in json.loads(as_text(raw))] if raw else []

    def read_feed(self, url: str, entries: list[disc.Entry], now: float, *, nested: bool = False) -> bool:
        got = self.load(url)
        if got is None:
            return False
        if isinstance(got, NotModified):
            feeds = [] if nested else self.cached_links(url)
            return any([self.read_feed(f, entries, now, nested=True) for f in feeds]) if feeds else True
        kind = disc.detect_kind(got.content, got.content_type)
        try:
            if kind == "html" and not nested:
                feeds = disc.autodiscover_feeds(got.content, got.final_url)[:MAX_AUTODISCOVERED_FEEDS]
                if not feeds:
                    self.errors.append(f"{url}: an HTML page that advertises no feed")
                    return False
                self.keep_links(url, feeds)
                return any([self.read_feed(f, entries, now, nested=True) for f in feeds])
            if kind == "sitemap":
                self.pending.pop()  # read again as a sitemap below (validators saved there)
                return self.read_sitemaps([url], entries, now, first=got)
            entries.extend(disc.parse_feed(got.content, got.final_url))
        except WorkerError as exc:
            self.errors.append(f"{url}: {exc}")
            return False
        return True

    def read_sitemaps(self, roots: list[str], entries: list[disc.Entry], now: float, *,
                      first: Page | None = None) -> bool:
        """Read sitemaps and indexes breadth first (at most MAX_SITEMAP_FETCHES documents)."""
        queue = list(roots)
        ok = False
        done: set[str] = set()
        while queue and self.fetches < MAX_SITEMAP_FETCHES + len(self.source.feeds):
            url = queue.pop(0)
            if url in done:
                continue
            done.add(url)
            if first is not None:
                got: Page | NotModified | None = first
                self.pending.append((url, first, None))
                first = None
            else:
                got = self.load(url)
            if got is None:
                continue
            if isinstance(got, NotModified):
                ok = True
                queue.extend(self.cached_links(url))
                continue
            try:
                sitemap = disc.parse_sitemap(got.content, got.final_url)
            except WorkerError as exc:
                self.errors.append(f"{url}: {exc}")
                continue
            ok = True
            entries.extend(disc.filter_recent(sitemap.entries, now, SITEMAP_MAX_AGE))
            if sitemap.sitemaps:
                # an index lists monthly or daily children: the old ones hold no news
                kids = [k.url for k in disc.filter_recent(sitemap.children, now, SITEMAP_MAX_AGE)]
                self.keep_links(url, kids)
                queue.extend(kids)
        return ok

    def commit(self) -> None:
        for url, page, links in self.pending:
            self.deps.fetcher.remember(url, page.etag, page.last_modified, kind="feed")
            if links is not None and (page.etag or page.last_modified):
                key = self.deps.keys.feed_validators(url)
                pipe = self.deps.redis.pipeline(transaction=False)
                pipe.hset(key, "links", json.dumps(links))
                pipe.expire(key, CONDITIONAL_TTL)
                pipe.execute()


# ----------------------------------------------------------------------------- fetch

@dataclass(frozen=True)
class Fetched:
    """Reference to fetched bytes stored in Redis, passed to the process stage as JSON."""

    ref: dict[str, Any]


def fetch(candidate: Candidate, deps: Deps, *, force: bool = False, pipe: Any = None) -> Fetched | Outcome:
    """Fetch one candidate; store its bytes for the process stage.

    Raises TransientFetchError / HostPaused for the task layer to retry or park;
    permanent failures come back as an Outcome with a reason. With `pipe`
    (a Redis pipeline), the page bytes and the counters are queued on it and
    the caller executes it before handing the page on: a fetch task stores a
    process batch's pages in one round trip.
    """
    if pipe is not None:
        return _fetch_into(candidate, deps, force, pipe)
    own = deps.redis.pipeline(transaction=False)
    result = _fetch_into(candidate, deps, force, own)
    own.execute()
    return result


def _fetch_into(candidate: Candidate, deps: Deps, force: bool, pipe: Any) -> Fetched | Outcome:
    """`fetch` with the page's writes queued on `pipe` (a transient error's counter is written at once)."""
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
        batch.flush_into(pipe, deps.keys.metrics())
        pipe.hincrby(deps.keys.stats(), "skipped", 1)
        return Outcome(status="skipped", reason=exc.reason, detail={"error": str(exc)})
    except FetchError as exc:
        batch.inc("wire_pages_fetched_total", source=source.name, status=_status_label(exc))
        batch.flush(deps.redis, deps.keys.metrics())
        raise
    elapsed = time.monotonic() - started
    batch.observe("wire_fetch_seconds", elapsed, source=source.name)
    if isinstance(got, NotModified):
        batch.inc("wire_pages_fetched_total", source=source.name, status="304")
        batch.flush_into(pipe, deps.keys.metrics())
        pipe.hincrby(deps.keys.stats(), "not_modified", 1)
        return Outcome(status="not_modified", reason="not_modified")
    batch.inc("wire_pages_fetched_total", source=source.name, status=str(got.status))
    stamp = int(got.fetched_at * 1000)
    page_key = deps.keys.page(candidate.url, stamp)
    pipe.set(page_key, page_bytes.pack(got.content), ex=PAGE_TTL)
    pipe.hincrby(deps.keys.stats(), "fetched", 1)
    batch.flush_into(pipe, deps.keys.metrics())
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


def note_bot_wall(deps: Deps, final_url: str, article: Article) -> None:
    """Feed the per-host bot-wall circuit breaker: challenges in a row pause the host, a real page resets it."""
    host = host_of(final_url)
    paused = deps.fetcher.politeness.note_page(host, bot_wall=article.not_article == "bot_wall")
    if paused:
        log.warning("bot challenges in a row: host paused", host=host, pause_s=round(paused, 1))


def _status_label(exc: FetchError) -> str:
    return str(exc.status) if exc.status else exc.reason


# ----------------------------------------------------------------------------- process

def process(ref: dict[str, Any], deps: Deps, *, now: float | None = None) -> Outcome:
    """Extract, deduplicate and publish one fetched page (read from Redis here)."""
    raw = deps.redis.get(ref["page_key"])
    return process_page(ref, raw, deps, now=now)  # type: ignore[arg-type]  # the client returns bytes


def process_page(ref: dict[str, Any], raw: bytes | None, deps: Deps, *, now: float | None = None) -> Outcome:
    """`process` for page bytes the caller already read (`None`: the page is gone)."""
    batch = MetricsBatch()
    page = extract_page(ref, raw, deps, batch, now=now)
    if page.doc is not None:
        settle(page, deps.dedup.submit(page.doc, now=page.now, publish=page.publish,
                                       maxlen=deps.settings.items_maxlen), batch)
    finish_pages([page], deps, batch)
    assert page.outcome is not None
    return page.outcome


@dataclass
class PageWork:
    """One page between extraction and its outcome.

    The process task extracts a batch's pages one by one, hands the documents
    to dedup together (`Dedup.submit_iter`: one Redis round trip per page),
    and records every page's end in one round trip (`finish_pages`).
    """

    ref: dict[str, Any]
    source: Source
    now: float
    bot_wall: bool = False
    doc: Doc | None = None  # for dedup; None when the page already has its outcome
    publish: Publish | None = None
    outcome: Outcome | None = None
    stat: str = ""  # the wire:stats counter the outcome adds to
    delete: bool = True  # drop the page bytes when finishing (not when the page is gone already)
    started: float = field(default_factory=time.monotonic)  # for the page's logged duration


def extract_page(ref: dict[str, Any], raw: bytes | None, deps: Deps, batch: MetricsBatch, *,
                 now: float | None = None) -> PageWork:
    """Extract one page: a `PageWork` with the document for dedup, or with its outcome (skipped)."""
    now = time.time() if now is None else now
    source = deps.source(ref["source"])
    work = PageWork(ref=ref, source=source, now=now)
    if raw is None:
        # Already processed and cleaned up by an earlier delivery, or expired.
        work.outcome, work.delete = Outcome(status="skipped", reason="page_gone"), False
        return work
    html = page_bytes.unpack(raw)
    started, cpu = time.perf_counter(), time.thread_time()
    article = extract(html, ref["final_url"], charset=ref.get("charset"), rules=source.rules)
    batch.observe("wire_extract_seconds", time.perf_counter() - started)
    batch.inc("wire_extract_cpu_seconds_total", time.thread_time() - cpu)
    work.bot_wall = article.not_article == "bot_wall"
    if work.bot_wall:  # the breaker's answer (pause or not) is needed now; a real page's reset can wait
        note_bot_wall(deps, ref["final_url"], article)
    if article.not_article or not article.body.strip():
        reason = article.not_article or "empty"
        batch.inc("wire_extract_failures_total", source=source.name, reason=reason)
        batch.inc("wire_skipped_total", source=source.name, reason=reason)
        work.outcome, work.stat = Outcome(status="skipped", reason=reason), "skipped"
        return work

    try:
        fallback = canonicalize(ref["final_url"])
    except (BadURL, ValueError):
        fallback = ref["url"]
    canonical = choose_canonical(fallback, article.canonical_url)
    work.doc = Doc(url=canonical, title=article.title, body=article.body,
                   published=article.published_at or ref.get("published"))

    def publish(decision: Decision) -> list[tuple[str, dict[str, str]]]:
        item = build_item(article, event=decision.event, story_id=decision.story_id,
                          version=decision.version, url=ref["url"], canonical_url=canonical,
                          source=source.name, fetched_at=float(ref["fetched_at"]), agency_hint=source.agency)
        fields = stream_fields(item)
        return [(stream, fields) for stream in streams_for(item, deps.keys.items_stream, deps.sources.routes)]

    work.publish = publish
    return work


def settle(work: PageWork, decision: Decision, batch: MetricsBatch) -> None:
    """Give an extracted page its outcome from the dedup decision (counted in `batch`)."""
    source = work.source.name
    if decision.event == "duplicate":
        batch.inc("wire_duplicates_total", source=source, kind=decision.kind or "exact")
        work.outcome = Outcome(status="duplicate", reason=decision.kind, event="duplicate",
                               story_id=decision.story_id, version=decision.version,
                               detail={"similarity": decision.similarity, "matched_url": decision.matched_url})
        work.stat = "duplicates"
        return
    batch.inc("wire_items_published_total", source=source, event=decision.event)
    assert work.doc is not None
    work.outcome = Outcome(status="published", event=decision.event, story_id=decision.story_id,
                           version=decision.version, detail={"canonical_url": work.doc.url})
    work.stat = "published"


def finish_pages(pages: Sequence[PageWork], deps: Deps, batch: MetricsBatch) -> None:
    """Record the end of pages that have their outcome, in one round trip.

    Counters, validators for the next conditional GET (saved only now, so a
    crash before this never turns the redelivery into a 304), the bot-wall
    reset of the page's host, the page bytes dropped.
    """
    pipe = deps.redis.pipeline(transaction=False)
    stats: dict[str, int] = {}
    # a batch's pages mostly share a host and a source: each is written once
    real_pages_from: dict[str, None] = {}  # hosts whose bot-wall count a real page resets
    last_published: dict[str, float] = {}  # source -> its latest published page's time
    now = 0.0
    for page in pages:
        if page.outcome is None:
            raise ValueError(f"finish_pages: {page.ref.get('url')!r} has no outcome")
        now = max(now, page.now)
        if page.stat:
            stats[page.stat] = stats.get(page.stat, 0) + 1
        if not page.delete:
            continue
        if not page.bot_wall:
            real_pages_from[host_of(page.ref["final_url"])] = None
        if page.stat == "published":
            last_published[page.source.name] = page.now
        deps.fetcher.remember(page.ref["url"], page.ref.get("etag"), page.ref.get("last_modified"), pipe=pipe)
        pipe.delete(page.ref["page_key"])
    for host in real_pages_from:
        deps.fetcher.politeness.clear_walls(host, pipe)
    for source, when in last_published.items():
        pipe.hset(deps.keys.source_state(source), "last_published", when)
    batch.flush_into(pipe, deps.keys.metrics())
    for stat, n in stats.items():
        pipe.hincrby(deps.keys.stats(), stat, n)
    if pages:
        pipe.hset(deps.keys.heartbeat(), "process", now)
    pipe.execute()
