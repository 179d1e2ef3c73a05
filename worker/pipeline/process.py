"""The process stage: extract, deduplicate and publish fetched pages.

Idempotent: dedup decides and publishes in one Redis script, and a re-run
of the same page is a `url` duplicate that publishes nothing.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from ..dedup import Decision, Doc
from ..dedup.engine import Publish
from ..errors import BadURL
from ..extract import extract
from ..extract.furniture import Template, sightings
from ..fetch import page_store
from ..fetch.politeness import host_of
from ..logs import get_logger
from ..metrics import MetricsBatch
from ..models import Article, Outcome, PageRef, Source
from ..publish import build_item, stream_fields, streams_for
from ..trail import event, events_of
from ..urls import canonicalize, choose_canonical
from . import memory, scripts
from .deps import Deps

log = get_logger("wire.pipeline")
MAX_REFETCHES = 3  # a page that expired unprocessed this often is dead-lettered instead of fetched again


def process(ref: PageRef, deps: Deps, *, now: float | None = None) -> Outcome:
    """Extract, deduplicate and publish one fetched page (read from Redis here, with its host's furniture)."""
    pipe = deps.redis.pipeline(transaction=False)
    pipe.get(ref.page_key)
    hosts = read_furniture(pipe, [ref], deps)
    raw, *tables = pipe.execute()
    templates = deps.furniture.templates(hosts, tables)
    return process_page(ref, raw, deps, now=now, template=templates.get(host_of(ref.final_url)))


def read_furniture(pipe: Any, refs: Sequence[PageRef], deps: Deps) -> list[str]:
    """Queue on `pipe` the read of the learned furniture of the pages' hosts; the hosts, in reply order."""
    hosts = list(dict.fromkeys(h for h in (host_of(ref.final_url) for ref in refs) if h))
    for host in hosts:
        deps.furniture.read(pipe, host)
    return hosts


def process_page(ref: PageRef, raw: bytes | None, deps: Deps, *, now: float | None = None,
                 template: Template | None = None) -> Outcome:
    """`process` for page bytes the caller already read (`None`: the page is gone)."""
    batch = MetricsBatch()
    page = extract_page(ref, raw, deps, batch, now=now, template=template)
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

    ref: PageRef
    source: Source
    now: float
    bot_wall: bool = False
    doc: Doc | None = None  # for dedup; None when the page already has its outcome
    publish: Publish | None = None
    outcome: Outcome | None = None
    stat: str = ""  # the wire:stats counter the outcome adds to
    lines: list[tuple[bytes, bytes]] = field(default_factory=list)  # counted in the host's furniture once decided
    delete: bool = True  # drop the page bytes when finishing (not when the page is gone already)
    started: float = field(default_factory=time.monotonic)  # for the page's logged duration


def extract_page(ref: PageRef, raw: bytes | None, deps: Deps, batch: MetricsBatch, *,
                 now: float | None = None, template: Template | None = None) -> PageWork:
    """Extract one page (dropping its host's learned furniture): a `PageWork` with the document for
    dedup, or with its outcome (skipped)."""
    now = time.time() if now is None else now
    source = deps.source(ref.source)
    work = PageWork(ref=ref, source=source, now=now)
    if raw is None:
        # Already processed and cleaned up by an earlier delivery, or expired.
        work.outcome, work.delete = Outcome(status="skipped", reason="page_gone"), False
        return work
    html = page_store.unpack(raw)
    started, cpu = time.perf_counter(), time.thread_time()
    # dates later than the day after the fetch are implausible: the fetch time, not the clock, bounds them
    article = extract(html, ref.final_url, charset=ref.charset, rules=source.rules,
                      fetched_at=ref.fetched_at or None, furniture=template)
    batch.observe("wire_extract_seconds", time.perf_counter() - started)
    batch.inc("wire_extract_cpu_seconds_total", time.thread_time() - cpu)
    memory.after_page(len(html))  # the page's tree is freed by now
    work.bot_wall = article.not_article == "bot_wall"
    if work.bot_wall:  # the breaker's answer (pause or not) is needed now; a real page's reset can wait
        note_bot_wall(deps, ref, article)
    if article.not_article or not article.body.strip():
        reason = article.not_article or "empty"
        batch.inc("wire_extract_failures_total", source=source.name, reason=reason)
        batch.inc("wire_skipped_total", source=source.name, reason=reason)
        work.outcome, work.stat = Outcome(status="skipped", reason=reason), "skipped"
        return work

    try:
        fallback = canonicalize(ref.final_url)
    except (BadURL, ValueError):
        fallback = ref.url
    canonical = choose_canonical(fallback, article.canonical_url)
    work.doc = Doc(url=canonical, title=article.title, body=article.body,
                   published=article.published_at or ref.published, furniture=article.furniture)
    work.lines = sightings(article.body.split("\n\n"), article.furniture)

    def publish(decision: Decision) -> list[tuple[str, dict[str, str]]]:
        item = build_item(article, event=decision.event, story_id=decision.story_id,
                          version=decision.version, url=ref.url, canonical_url=canonical,
                          source=source.name, fetched_at=ref.fetched_at, agency_hint=source.agency)
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

    Counters, each page's outcome in its URL's trail, validators for the next
    conditional GET (saved only now, so a crash before this never turns the
    redelivery into a 304), the bot-wall reset of the page's host, the
    decided pages' lines counted in their host's furniture, the page bytes
    dropped.
    """
    pipe = deps.redis.pipeline(transaction=False)
    stats: dict[str, int] = {}
    # a batch's pages mostly share a host and a source: each is written once
    real_pages_from: dict[str, float] = {}  # hosts whose bot-wall count a real page resets -> its fetch time
    last_published: dict[str, float] = {}  # source -> its latest published page's time
    now = 0.0
    for page in pages:
        if page.outcome is None:
            raise ValueError(f"finish_pages: {page.ref.url!r} has no outcome")
        now = max(now, page.now)
        if page.stat:
            stats[page.stat] = stats.get(page.stat, 0) + 1
        _record(page, deps, pipe)
        if not page.delete:
            continue
        if not page.bot_wall:
            host = host_of(page.ref.final_url)
            real_pages_from[host] = max(real_pages_from.get(host, 0.0), page.ref.fetched_at or page.now)
        if page.stat == "published":
            last_published[page.source.name] = page.now
        deps.fetcher.remember(page.ref.url, page.ref.etag, page.ref.last_modified, pipe=pipe)
        if page.lines and page.outcome.story_id:
            deps.furniture.record(pipe, host_of(page.ref.final_url), page.outcome.story_id, page.lines, page.now)
        pipe.delete(page.ref.page_key)
    for host, fetched_at in real_pages_from.items():
        deps.fetcher.politeness.clear_walls(host, pipe, fetched_at)
    for source, when in last_published.items():
        pipe.hset(deps.keys.source_state(source), "last_published", when)
    batch.flush_into(pipe, deps.keys.metrics())
    for stat, n in stats.items():
        pipe.hincrby(deps.keys.stats(), stat, n)
    if pages:
        pipe.hset(deps.keys.heartbeat(), "process", now)
    scripts.execute(pipe, [deps.furniture.script, deps.fetcher.politeness.walls_script])


def _record(page: PageWork, deps: Deps, pipe: Any) -> None:
    """Queue the page's outcome for its URL's trail (and let its canonical URL find the trail)."""
    out, url = page.outcome, page.ref.url
    assert out is not None
    canonical = page.doc.url if page.doc is not None and page.doc.url != url else None
    if out.status == "published":
        ev = event("published", page.now, story=out.story_id, version=out.version, event=out.event,
                   canonical=canonical)
    elif out.status == "duplicate":
        sim = out.detail.get("similarity")
        ev = event("duplicate", page.now, story=out.story_id, version=out.version, kind=out.reason,
                   sim=round(sim, 4) if isinstance(sim, float) else sim, matched=out.detail.get("matched_url"),
                   canonical=canonical)
    elif out.status == "refetch":
        ev = event("refetch", page.now, n=out.detail.get("n"))
    else:
        ev = event(out.status, page.now, stage="process", reason=out.reason)
    deps.trail.add(pipe, url, ev)
    deps.trail.alias(pipe, canonical, url)


def gone_pages(refs: Sequence[PageRef], deps: Deps) -> list[int | None]:
    """For pages whose stored bytes are gone: None for one an earlier delivery already processed
    (its trail holds an outcome since it was fetched), else how often its URL was fetched again
    for this reason before (one round trip)."""
    pipe = deps.redis.pipeline(transaction=False)
    for ref in refs:
        pipe.lrange(deps.keys.trail(ref.url), 0, -1)
    out: list[int | None] = []
    for ref, raw in zip(refs, pipe.execute(), strict=True):
        events = events_of(raw)
        ended = any(e.get("ev") in _OUTCOMES and float(e.get("t") or 0) >= ref.fetched_at for e in events)
        out.append(None if ended else sum(e.get("ev") == "refetch" for e in events))
    return out


_OUTCOMES = frozenset({"published", "duplicate", "skipped", "dead", "refetch"})


def note_bot_wall(deps: Deps, ref: PageRef, article: Article) -> None:
    """Feed the per-host bot-wall circuit breaker: challenges in a row pause the host, a real page resets it."""
    host = host_of(ref.final_url)
    paused = deps.fetcher.politeness.note_page(host, bot_wall=article.not_article == "bot_wall",
                                               fetched_at=ref.fetched_at)
    if paused:
        log.warning("bot challenges in a row: host paused", host=host, pause_s=round(paused, 1))

