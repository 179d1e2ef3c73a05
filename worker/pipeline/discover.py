"""The discover stage: read a source's feeds, sitemaps and listings; enqueue new URLs.

Crash safety: URLs are marked seen only after their fetch tasks are
enqueued, so a crash re-discovers them (and dedup absorbs the double)
instead of losing them.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import partial
from typing import TypeVar
from urllib.parse import urlsplit

import redis
from billiard.exceptions import SoftTimeLimitExceeded  # Celery's, raised into the task: not a document's

from .. import discover as disc
from ..errors import BadURL, WorkerError
from ..fetch.fetcher import NotModified
from ..keys import CONDITIONAL_TTL, SEEN_TTL, as_text
from ..logs import get_logger
from ..metrics import MetricsBatch
from ..models import Candidate, Listing, Page, Source
from ..trail import event
from ..urls import canonicalize, redact, redact_text
from .deps import Deps

T = TypeVar("T")
log = get_logger("wire.discover")

Found = tuple[disc.Entry, str, str]  # an entry, the document it was found in, and that document's kind

MAX_SITEMAP_FETCHES = 25  # per source per run: an index can list thousands of children
SITEMAP_MAX_AGE = 3 * 86400.0  # sitemap entries with an older lastmod are not fetched
DISCOVERY_MAX_WAIT = 45.0  # seconds a discovery document may wait for its pacing slot (see _Reader.slot_wait)
SOURCE_URL_LOG_MAX = 50_000  # discovered URLs remembered per source for `reingest --since`
NO_DATE = "1"  # the seen mark of a URL no entry gave a date; ISO-8601 stamps sort after it


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
    Each document fails alone: whatever goes wrong reading one (even an
    unexpected error) is recorded as the source's error and the others are
    read; only a Redis failure ends the discovery (the task is requeued).
    Each new URL's trail records where it was found.
    """
    now = time.time() if now is None else now
    source = deps.source(source_name)
    reader = _Reader(deps, source)
    entries: list[Found] = []
    ok = 0
    for url in source.feeds:
        ok += reader.alone(url, partial(reader.read_feed, url, entries, now), False)
    for url in source.sitemaps:
        if _is_site_root(url):
            roots = reader.alone(url, partial(deps.fetcher.politeness.robots_sitemaps, url, source.rate), None,
                                 what="robots.txt")
            if roots is None:
                continue
            if not roots:
                reader.errors.append(f"{url}: robots.txt lists no Sitemap")
                continue
        else:
            roots = [url]
        ok += reader.alone(url, partial(reader.read_sitemaps, roots, entries, now), False)
    for listing in source.listings:
        ok += reader.alone(listing.url, partial(reader.read_listing, listing, entries), False)
    errors = reader.errors

    # a URL's entries from every feed and sitemap together: the first one read may lack the date
    # another one moved (a feed item without lastmod, a sitemap with it)
    merged: dict[str, disc.Entry] = {}
    marks: dict[str, str] = {}
    origins: dict[str, Found] = {}
    refused: dict[str, Found] = {}
    for found in entries:
        entry = found[0]
        if entry.refused:
            refused.setdefault(entry.url, found)
            continue
        try:
            url = canonicalize(entry.url)
        except (BadURL, ValueError):
            continue
        if not source.accepts(url):
            continue
        merged[url] = disc.dedupe([merged[url], entry])[0] if url in merged else entry
        marks[url] = max(marks.get(url, NO_DATE), disc.change_mark(entry) or NO_DATE)
        origins.setdefault(url, found)  # where it was found first
    candidates = {url: Candidate(url=url, source=source.name, title=e.title, published=e.published)
                  for url, e in merged.items()}
    urls = list(candidates)
    seen_values = deps.redis.mget([deps.keys.seen(u) for u in urls]) if urls else []
    new: list[Candidate] = []
    for url, seen in zip(urls, seen_values, strict=True):
        # a date that moved past the one seen means the page changed: fetch it again (conditionally);
        # one that went back (a sitemap that answered 304 is not read again) changes nothing
        if seen is None or marks[url] > as_text(seen):
            new.append(candidates[url])
    if new:
        enqueue(new)
    pipe = deps.redis.pipeline(transaction=False)
    for cand in new:
        pipe.set(deps.keys.seen(cand.url), marks[cand.url], ex=SEEN_TTL)
        _, via, doc = origins[cand.url]
        deps.trail.add(pipe, cand.url, event("discovered", now, source=source.name, via=via, doc=doc,
                                             lastmod=merged[cand.url].lastmod))
    for link, (entry, via, doc) in _newly_refused(deps, refused).items():
        log.info("discovery refused a link", source=source.name, url=redact(link), reason=entry.refused,
                 via=redact(via))
        deps.trail.add(pipe, link, event("discovered", now, source=source.name, via=via, doc=doc),
                       event("skipped", now, stage="discover", reason="bad_url", error=entry.refused))
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


def _newly_refused(deps: Deps, refused: dict[str, Found]) -> dict[str, Found]:
    """The refused links not recorded yet: each is recorded once a dedup window, not at every discovery.

    One round trip, only when a document gave such a link.
    """
    if not refused:
        return {}
    pipe = deps.redis.pipeline(transaction=False)
    for link in refused:
        pipe.set(deps.keys.seen(link), "refused", nx=True, ex=SEEN_TTL)
    return {link: found for (link, found), fresh in zip(refused.items(), pipe.execute(), strict=True) if fresh}


def _keep(entries: list[Found], found: Iterable[disc.Entry], via: str, doc: str) -> None:
    entries.extend((entry, via, doc) for entry in found)


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
        # how long the documents may wait for the host's pacing slot, together: half the soft time limit
        self.waits_until = time.monotonic() + deps.settings.soft_time_limit / 2
        # validators (and derived links) are saved after the candidates are enqueued
        self.pending: list[tuple[str, Page, list[str] | None]] = []

    def alone(self, url: str, read: Callable[[], T], failed: T, *, what: str = "") -> T:
        """`read()`, or `failed` after recording its error: one document never costs the others.

        Redis failing is not the document's fault: it ends the discovery, whose task is requeued;
        nor is the task's time limit.
        """
        try:
            return read()
        except (redis.RedisError, SoftTimeLimitExceeded):
            raise
        except Exception as exc:
            where = f"{url}: {what}: " if what else f"{url}: "
            self.errors.append(where + (str(exc) if isinstance(exc, WorkerError) else f"{type(exc).__name__}: {exc}"))
            return failed

    def load(self, url: str) -> Page | NotModified | None:
        """The document, NotModified, or None after recording an error (an unexpected one too)."""
        self.fetches += 1
        got = self.alone(url, partial(self.deps.fetcher.fetch, url, rate=self.source.rate, kind="feed",
                                      max_wait=self.slot_wait()), None)
        if isinstance(got, Page):
            self.pending.append((url, got, None))
        return got

    def slot_wait(self) -> float:
        """How long this document may wait for its host's pacing slot.

        A page whose slot is far is parked and fetched when it is due; a
        discovery document that is not read waits for the source's next
        interval (an hour by default). At a slow `rate` (one request per 20 s)
        robots.txt takes the slot, so the first feed or sitemap would wait
        past the pages' 10 s every time robots.txt is fetched anew: a
        discovery waits up to DISCOVERY_MAX_WAIT per document, within half the
        task's soft time limit for them all.
        """
        left = self.waits_until - time.monotonic()
        return max(self.deps.fetcher.politeness.max_wait, min(DISCOVERY_MAX_WAIT, left))

    def read_listing(self, listing: Listing, entries: list[Found]) -> bool:
        got = self.load(listing.url)
        if isinstance(got, NotModified):
            return True
        if got is None:
            return False
        try:
            found = disc.parse_listing(got.content, listing.url, listing.links)
        except WorkerError as exc:
            self.errors.append(f"{listing.url}: {exc}")
            return False
        _keep(entries, found, listing.url, "listing")
        return True

    def keep_links(self, url: str, links: list[str]) -> None:
        """Remember the feeds or child sitemaps `url` pointed to, for when it answers 304."""
        self.pending = [(u, p, links if u == url else lk) for u, p, lk in self.pending]

    def cached_links(self, url: str) -> list[str]:
        raw = self.deps.redis.hget(self.deps.keys.feed_validators(url), "links")
        return [str(u) for u in json.loads(as_text(raw))] if raw else []

    def read_feed(self, url: str, entries: list[Found], now: float, *, nested: bool = False) -> bool:
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
            _keep(entries, disc.parse_feed(got.content, got.final_url), url, "feed")
        except WorkerError as exc:
            self.errors.append(f"{url}: {exc}")
            return False
        return True

    def read_sitemaps(self, roots: list[str], entries: list[Found], now: float, *,
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
            _keep(entries, disc.filter_recent(sitemap.entries, now, SITEMAP_MAX_AGE), url, "sitemap")
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
