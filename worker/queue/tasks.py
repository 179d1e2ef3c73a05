"""Celery tasks: thin adapters over the pipeline stages, taking JSON primitives only.

Each task reads its message, runs the stage's plain functions on a batch
and hands fetched pages on to process in batches; what becomes of an item
that does not simply succeed (requeue, retry, park, dead letter, delivery
cap) is the policy in `delivery`.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

import redis
import structlog
from celery import Task, shared_task
from celery.exceptions import SoftTimeLimitExceeded

from ..errors import FetchError, HostPaused, TransientFetchError
from ..extract.furniture import Template
from ..fetch.politeness import finite_wait, host_of
from ..logs import get_logger
from ..metrics import MetricsBatch
from ..models import Candidate, Outcome, PageRef
from ..pipeline.deps import Deps
from ..pipeline.discover import discover
from ..pipeline.fetch import attempt_event, fetch
from ..pipeline.process import (
    MAX_REFETCHES,
    PageWork,
    extract_page,
    finish_pages,
    gone_pages,
    read_furniture,
    settle,
)
from ..settings import Settings, SourcesConfig
from ..trail import event
from . import delivery
from .delivery import Batch

log = get_logger("wire.tasks")

_deps: Deps | None = None
_config: tuple[Settings, SourcesConfig] | None = None


def init(settings: Settings, sources: SourcesConfig) -> None:
    global _config, _deps
    _config = (settings, sources)
    _deps = None


def deps() -> Deps:
    """Per-process dependencies, created lazily so each prefork child gets its own sockets."""
    global _deps
    if _deps is None:
        if _config is None:
            settings = Settings.from_env()
            from ..settings import load_sources

            init(settings, load_sources(settings.sources_path))
        assert _config is not None
        _deps = Deps.create(*_config)
    return _deps


def _summary(stage: str, started: float, outcome: Outcome | None, **extra: Any) -> None:
    log.info("page", stage=stage, pid=os.getpid(), outcome=outcome.status if outcome else extra.pop("status", None),
             reason=outcome.reason if outcome else extra.pop("reason", None),
             duration_ms=round((time.monotonic() - started) * 1000, 1), **extra)


@shared_task(name="wire.discover", bind=True, ignore_result=True)
def discover_task(self: Task, source: str) -> None:
    d = deps()
    started = time.monotonic()
    structlog.contextvars.bind_contextvars(task_id=self.request.id, source=source)
    try:
        with delivery.requeue_if_redis_down(d, "discover"):
            try:
                report = discover(source, d, enqueue=lambda found: enqueue_fetches(
                    [c.to_json() for c in found], size=d.settings.fetch_batch))
                log.info("discovered", found=report.found, new=len(report.new), errors=len(report.errors),
                         duration_ms=round((time.monotonic() - started) * 1000, 1))
                for err in report.errors[:5]:
                    log.warning("discovery error", error=err)
            finally:
                delivery.done(d, self, "discover")
    finally:
        structlog.contextvars.clear_contextvars()


def _argsrepr(work: Batch, noun: str) -> str:
    """What Flower and task events show of a task's arguments: the item count and the first URL.

    Celery otherwise builds this with its `saferepr` of the whole batch on
    every `apply_async`: ~0.5 ms of CPU for a process batch of 8 pages, as
    much as storing the 8 pages' bytes. The URLs are in the page logs.
    """
    items = delivery.items(work)
    first = str(items[0].get("url", "") if isinstance(items[0], dict) else items[0])[:200] if items else ""
    plural = "" if len(items) == 1 else "s"
    return f"[{len(items)} {noun}{plural}: {first}{' ...' if len(items) > 1 else ''}]"


def enqueue_fetch(candidates: Batch, *, force: bool = False, parks: int = 0, attempt: int = 0,
                  countdown: float | None = None) -> None:
    """One fetch task for one candidate or a batch of them."""
    kwargs = {"force": force, "parks": parks, "attempt": attempt}
    fetch_task.apply_async(args=[delivery.compact(candidates)], kwargs=kwargs, queue="fetch", countdown=countdown,
                           argsrepr=_argsrepr(candidates, "URL"), kwargsrepr=repr(kwargs))


def enqueue_fetches(candidates: list[dict[str, Any]], *, size: int, force: bool = False, parks: int = 0) -> None:
    """Fetch tasks of at most `size` candidates each (a task per page costs more than the fetch)."""
    for i in range(0, len(candidates), size):
        enqueue_fetch(candidates[i:i + size], force=force, parks=parks)


def enqueue_process(refs: Batch) -> None:
    process_task.apply_async(args=[delivery.compact(refs)], queue="process", argsrepr=_argsrepr(refs, "page"),
                             kwargsrepr="{}")


@shared_task(name="wire.unpark", bind=True, ignore_result=True)
def unpark_task(self: Task) -> int:
    """Move due parked fetches back to the fetch queue (enqueue first, then remove: never lose).

    A member that is not a parked fetch is dead-lettered (`malformed_task`) and
    removed: read first every time, it would otherwise hold back the others forever.
    """
    d = deps()
    with delivery.requeue_if_redis_down(d, "unpark"):  # nothing is lost: the parked set keeps whatever was not moved
        due: list[bytes] = d.redis.zrangebyscore(d.keys.parked(), "-inf", time.time(), start=0,  # type: ignore[assignment]
                                                 num=500)
        for member in due:
            try:
                data = json.loads(member)
                work, force, parks = data["candidate"], bool(data.get("force", False)), int(data.get("parks", 0))
                if not delivery.items(work):
                    raise ValueError("no candidate")
            except (ValueError, KeyError, TypeError, AttributeError) as exc:
                delivery.dead(d, "fetch", "malformed_task", f"parked member unreadable: {type(exc).__name__}: {exc}",
                              {"parked": member.decode("utf-8", "replace")[:2000]}, 0)
            else:
                enqueue_fetch(work, force=force, parks=parks)
            d.redis.zrem(d.keys.parked(), member)
        delivery.done(d, self, "discover")
    return len(due)


class _Handoff:
    """Fetched pages go to the process queue in batches of at most `size`, none held past `linger` seconds.

    The pages' bytes and the fetch counters are queued on one Redis pipeline
    (`pipe`, given to `pipeline.fetch`) and written just before their process
    task is enqueued: one round trip per process batch instead of one per page.
    """

    def __init__(self, client: redis.Redis, size: int, linger: float) -> None:
        self.size, self.linger = size, linger
        self.pipe = client.pipeline(transaction=False)
        self.refs: list[PageRef] = []
        self.since = 0.0

    def add(self, ref: PageRef) -> None:
        if not self.refs:
            self.since = time.monotonic()
        self.refs.append(ref)
        if len(self.refs) >= self.size:
            self.flush()

    def flush_if_stale(self) -> None:
        """Before a fetch that may wait on a slow host: pages already fetched do not wait with it."""
        if self.refs and time.monotonic() - self.since >= self.linger:
            self.flush()

    def flush(self) -> None:
        """Write what is queued (the pages first), then enqueue their process task."""
        if len(self.pipe):
            self.pipe.execute()
        if self.refs:
            enqueue_process([ref.to_json() for ref in self.refs])
            self.refs = []


HANDOFF_LINGER = 0.5  # seconds a fetched page may wait for others to fill its process batch


def _time_left(d: Deps, started: float, per_item: float) -> bool:
    """Whether a batch may start one more item and still end well inside the soft time limit.

    The rest of a batch is handed back as a new task instead: a batch never
    runs into the time limit because of its size.
    """
    return time.monotonic() - started + per_item < d.settings.soft_time_limit / 2


@shared_task(name="wire.fetch", bind=True, ignore_result=True)
def fetch_task(self: Task, candidates: Batch, force: bool = False, parks: int = 0, attempt: int = 0) -> None:
    """Fetch one candidate or a batch; fetched pages go on to process in batches.

    Each candidate's retry, park or dead letter is its own new task, so one
    slow or failing URL never holds back or repeats the rest of its batch.
    """
    d = deps()
    work = delivery.items(candidates)
    started = time.monotonic()
    structlog.contextvars.bind_contextvars(task_id=self.request.id)
    try:
        with delivery.requeue_if_redis_down(d, "fetch", self):
            deliveries = delivery.deliveries(d, self)
            if deliveries > 1 and len(work) > 1:
                delivery.split(d, self, "fetch", work, lambda c: enqueue_fetch(c, force=force, parks=parks, attempt=attempt))
                return
            if deliveries > d.settings.max_attempts + 1:
                delivery.dead(d, "fetch", "poison", f"delivered {deliveries} times without finishing", work[0], attempt)
                delivery.done(d, self, "fetch")
                return
            work = _well_formed(d, "fetch", work, ("url", "source"), attempt)
            handoff = _Handoff(d.redis, d.settings.process_batch, HANDOFF_LINGER)
            per_fetch = d.fetcher.politeness.max_wait + d.settings.fetch_timeout
            handed: set[str] = set()  # hosts whose URLs of this batch went to another task
            for i, candidate in enumerate(work):
                if i and not _time_left(d, started, per_fetch):
                    rest = [c for c in work[i:] if host_of(c.get("url", "")) not in handed]
                    if rest:
                        enqueue_fetch(rest, force=force, parks=parks, attempt=attempt)
                        log.info("batch handed on: time limit near", stage="fetch", items=len(rest))
                    break
                handoff.flush_if_stale()
                if host_of(candidate.get("url", "")) in handed:
                    continue  # handed on with the candidate that found its host paused or slow
                try:
                    ref = _fetch_one(d, candidate, work[i + 1:], handed, handoff.pipe, force=force, parks=parks,
                                     attempt=attempt)
                except SoftTimeLimitExceeded as exc:  # this fetch never ended: it alone is dead-lettered
                    log.warning("fetch hit the soft time limit", url=candidate["url"])
                    delivery.dead(d, "fetch", type(exc).__name__, repr(exc), candidate, attempt)
                    if work[i + 1:]:
                        enqueue_fetch(work[i + 1:], force=force, parks=parks, attempt=attempt)
                        log.info("batch handed on: time limit struck", stage="fetch", items=len(work) - i - 1)
                    break
                if ref is not None:
                    handoff.add(ref)
            # pages are enqueued before the batch counts as done: a crash in between
            # redelivers the batch, which fetches again and publishes nothing twice
            handoff.flush()
            delivery.done(d, self, "fetch")
    finally:
        structlog.contextvars.clear_contextvars()


def _well_formed(d: Deps, stage: str, work: list[Any], fields: tuple[str, ...], attempt: int) -> list[Any]:
    """The items of a batch that are work items; each other one is dead-lettered as `malformed_task`
    with what was there, so it never costs its neighbours (or the batch) anything."""
    good = []
    for item in work:
        wrong = delivery.malformed(item, fields)
        if wrong is None:
            good.append(item)
        else:
            delivery.dead(d, stage, "malformed_task", wrong, item, attempt)
    return good


def _fetch_one(d: Deps, candidate: dict[str, Any], rest: list[dict[str, Any]], handed: set[str],
               pipe: Any, *, force: bool, parks: int, attempt: int) -> PageRef | None:
    """Fetch one candidate of a batch: the page's ref for process, or None after retrying, parking or skipping.

    The page's writes are queued on `pipe` (the hand-off's), executed before its process task is enqueued.
    When the host is paused, or the fetch ran into the deadline, the host's URLs in `rest` are handed on to
    a task of their own and the host is added to `handed`: the batch's other hosts do not wait behind it.
    """
    started = time.monotonic()
    cand = Candidate.from_json(candidate)
    with structlog.contextvars.bound_contextvars(source=cand.source, url=cand.url):
        try:
            result = fetch(cand, d, force=force, pipe=pipe, attempt=attempt)
        except HostPaused as exc:
            # the rest of the batch on this host would only find it paused too: they wait together
            host = host_of(cand.url)
            handed.add(host)
            waiting = [candidate] + [c for c in rest if host_of(c.get("url", "")) == host]
            wait = finite_wait(exc.retry_after or 30.0, 30.0)
            if parks >= delivery.MAX_PARKS:
                for c in waiting:
                    delivery.dead(d, "fetch", exc.reason, str(exc), c, attempt)
                return None
            if wait <= d.settings.max_countdown:
                enqueue_fetch(waiting, force=force, parks=parks + 1, attempt=attempt, countdown=wait)
                for c in waiting:
                    d.trail.add(pipe, c["url"], event("retry", time.time(), reason=exc.reason, error=str(exc),
                                                      wait=round(wait, 1)))
            else:
                delivery.park(d, waiting, force=force, parks=parks, not_before=time.time() + wait, reason=exc.reason)
            _summary("fetch", started, None, status="parked", reason=exc.reason, wait_s=round(wait, 1),
                     urls=len(waiting))
            return None
        except TransientFetchError as exc:
            if exc.reason == "timeout":
                _hand_on_host(cand.url, rest, handed, force=force, parks=parks, attempt=attempt)
            tried = attempt_event(started, attempt, exc)
            if attempt + 1 >= d.settings.max_attempts:
                delivery.dead(d, "fetch", exc.reason, str(exc), candidate, attempt, events=[tried])
                return None
            wait = finite_wait(exc.retry_after, delivery.backoff(attempt, d.settings.max_countdown))
            if wait > d.settings.max_countdown:
                delivery.park(d, candidate, force=force, parks=parks, not_before=time.time() + wait,
                              reason=exc.reason, events=[tried])
                _summary("fetch", started, None, status="parked", reason=exc.reason, wait_s=round(wait, 1))
                return None
            # a new task with its own delivery count, after a backoff held as a (bounded) countdown
            enqueue_fetch(candidate, force=force, parks=parks, attempt=attempt + 1, countdown=wait)
            d.trail.add(pipe, cand.url, tried, event("retry", time.time(), reason=exc.reason, wait=round(wait, 1)))
            _summary("fetch", started, None, status="retry", reason=exc.reason, wait_s=round(wait, 1))
            return None
        except FetchError as exc:  # a permanent error not already turned into an outcome
            delivery.dead(d, "fetch", exc.reason, str(exc), candidate, attempt)
            return None
        except SoftTimeLimitExceeded:
            raise
        except Exception as exc:  # a bug or a value nobody expected: this URL ends here, its neighbours go on
            if delivery.redis_down(exc):
                raise
            log.exception("fetch failed")
            delivery.dead(d, "fetch", type(exc).__name__, str(exc) or repr(exc), candidate, attempt)
            return None
        if isinstance(result, PageRef):
            _summary("fetch", started, None, status="fetched")
            return result
        _summary("fetch", started, result)
        return None


def _hand_on_host(url: str, rest: list[dict[str, Any]], handed: set[str], *, force: bool, parks: int,
                  attempt: int) -> None:
    """After a fetch of `url` ran into the deadline, its host's URLs in the rest of the batch go to a task of
    their own (another thread takes it at once): the batch's other hosts are not held behind another slow
    page of that host, a deadline each."""
    host = host_of(url)
    handed.add(host)
    same = [c for c in rest if host_of(c.get("url", "")) == host]
    if same:
        enqueue_fetch(same, force=force, parks=parks, attempt=attempt)
        log.info("batch handed on: host slow", stage="fetch", items=len(same))


@shared_task(name="wire.process", bind=True, ignore_result=True)
def process_task(self: Task, refs: Batch) -> None:
    """Extract, deduplicate and publish one fetched page or a batch of them."""
    d = deps()
    started = time.monotonic()
    structlog.contextvars.bind_contextvars(task_id=self.request.id)
    try:
        with delivery.requeue_if_redis_down(d, "process", self):
            work, malformed = _page_refs(delivery.items(refs))
            # one round trip: count this delivery, read the pages and their hosts' learned furniture
            pipe = d.redis.pipeline(transaction=False)
            delivery.count_delivery(d, self, pipe)
            if work:
                pipe.mget([ref.page_key for ref in work])
            hosts = read_furniture(pipe, work, d)
            deliveries, _, *read = pipe.execute()
            pages = read[0] if work else []
            templates = d.furniture.templates(hosts, read[1:] if work else [])
            self.request.wire_counted = True  # for delivery.requeue
            if int(deliveries) > 1 and len(delivery.items(refs)) > 1:
                delivery.split(d, self, "process", delivery.items(refs), enqueue_process)
                return
            for item, wrong in malformed:  # each ends alone; the well-formed pages go on
                delivery.dead(d, "process", "malformed_task", wrong, item, int(deliveries) - 1)
            if work and int(deliveries) > d.settings.max_attempts:
                ref = work[0]
                delivery.dead(d, "process", "poison", f"delivered {deliveries} times without finishing",
                              ref.to_json(), int(deliveries) - 1)
                d.redis.delete(ref.page_key)
                delivery.done(d, self, "process")
                return
            _process_batch(d, work, pages, started, templates)
            delivery.done(d, self, "process")
    finally:
        structlog.contextvars.clear_contextvars()


def _page_refs(items: list[Any]) -> tuple[list[PageRef], list[tuple[Any, str]]]:
    """A process batch's page refs, and the items that are none (with what is wrong with each)."""
    work: list[PageRef] = []
    malformed: list[tuple[Any, str]] = []
    for item in items:
        wrong = delivery.malformed(item, ("url", "source", "final_url", "page_key"))
        if wrong is None:
            try:
                work.append(PageRef.from_json(item))
                continue
            except (TypeError, ValueError) as exc:
                wrong = f"{type(exc).__name__}: {exc}"
        malformed.append((item, wrong))
    return work, malformed


def _process_batch(d: Deps, work: list[PageRef], pages: list[bytes | None], started: float,
                   templates: dict[str, Template] | None = None) -> None:
    """Extract the pages one by one, decide them together, record their ends in one round trip.

    Each page fails alone: an extraction or dedup error dead-letters that page
    and the rest go on. The soft time limit dead-letters the page being
    extracted (it may be the one that never ends) and hands the pages not yet
    extracted to a new task; pages extracted before it are still decided
    (the hard limit is well behind). A Redis failure is raised for the task
    to be requeued: what was recorded stays, and the redelivery publishes
    nothing twice.
    """
    batch = MetricsBatch()
    ready: list[PageWork] = []  # extracted, for dedup
    ended: list[PageWork] = []  # with their outcome
    for i, (ref, page) in enumerate(zip(work, pages, strict=True)):
        if i and not _time_left(d, started, 0.0):
            enqueue_process([ref.to_json() for ref in work[i:]])
            log.info("batch handed on: time limit near", stage="process", items=len(work) - i)
            break
        try:
            got = _extract_one(d, ref, page, batch, (templates or {}).get(host_of(ref.final_url)))
        except SoftTimeLimitExceeded:
            if i + 1 < len(work):
                enqueue_process([ref.to_json() for ref in work[i + 1:]])
                log.info("batch handed on: time limit struck", stage="process", items=len(work) - i - 1)
            break
        if got is not None:
            (ended if got.doc is None else ready).append(got)
    gone = [w for w in ended if w.outcome is not None and w.outcome.reason == "page_gone"]
    if gone:
        ended = [w for w in ended if w not in gone] + _refetch_gone(d, gone)
    ended += _decide(d, ready, batch)
    finish_pages(ended, d, batch)
    for w in ended:
        assert w.outcome is not None
        with structlog.contextvars.bound_contextvars(source=w.ref.source, url=w.ref.url):
            _summary("process", w.started, w.outcome, story_id=w.outcome.story_id, story_event=w.outcome.event)


def _refetch_gone(d: Deps, gone: list[PageWork]) -> list[PageWork]:
    """Pages whose stored bytes are gone: those to finish, with their outcome.

    An earlier delivery that processed the page deleted them: `skipped: page_gone`
    as before. Otherwise they expired in a backlog older than PAGE_TTL, and the
    URL (marked seen, so discovery will not bring it back) is fetched again, at
    most MAX_REFETCHES times; after that it is dead-lettered.
    """
    out = []
    for w, refetched in zip(gone, gone_pages([w.ref for w in gone], d), strict=True):
        if refetched is None:
            out.append(w)
            continue
        ref = w.ref
        if refetched >= MAX_REFETCHES:
            delivery.dead(d, "process", "page_gone",
                          f"the stored page expired before it was processed, {refetched + 1} times", ref.to_json(),
                          refetched)
            continue
        # enqueued before the trail records it: a crash in between fetches twice, which dedup absorbs
        enqueue_fetch({"url": ref.url, "source": ref.source, "published": ref.published}, force=ref.force)
        w.outcome = Outcome(status="refetch", reason="page_gone", detail={"n": refetched + 1})
        out.append(w)
    return out


def _extract_one(d: Deps, ref: PageRef, page: bytes | None, batch: MetricsBatch,
                 template: Template | None = None) -> PageWork | None:
    """Extract one page of a batch; None when it was dead-lettered (its error is logged and kept)."""
    with structlog.contextvars.bound_contextvars(source=ref.source, url=ref.url):
        try:
            return extract_page(ref, page, d, batch, template=template)
        except SoftTimeLimitExceeded as exc:
            log.warning("process hit the soft time limit")
            delivery.dead(d, "process", type(exc).__name__, repr(exc), ref.to_json(), 0)
            raise
        except Exception as exc:  # an extraction bug: keep the page, record why
            if delivery.redis_down(exc):
                raise
            log.exception("process failed")
            delivery.dead(d, "process", type(exc).__name__, repr(exc), ref.to_json(), 0)
            return None


def _decide(d: Deps, ready: list[PageWork], batch: MetricsBatch) -> list[PageWork]:
    """Deduplicate and publish extracted pages in order; those that got their outcome.

    `submit_iter` raises at the page an error belongs to, with every page
    before it decided: that page is dead-lettered and the rest submitted
    again. The soft time limit hands the undecided pages to a new task.
    """
    decided: list[PageWork] = []
    while ready:
        docs = [w.doc for w in ready if w.doc is not None]
        stream = d.dedup.submit_iter(docs, now=[w.now for w in ready], publish=[w.publish for w in ready],
                                     maxlen=d.settings.items_maxlen)
        done = 0
        try:
            for w, decision in zip(ready, stream, strict=False):
                settle(w, decision, batch)
                decided.append(w)
                done += 1
            return decided
        except SoftTimeLimitExceeded:
            enqueue_process([w.ref.to_json() for w in ready[done:]])
            log.warning("process hit the soft time limit in dedup: pages handed on", items=len(ready) - done)
            return decided
        except Exception as exc:  # a dedup bug or a failing publish: keep the page, record why
            if delivery.redis_down(exc):
                raise
            failed = ready[done]
            with structlog.contextvars.bound_contextvars(source=failed.ref.source, url=failed.ref.url):
                log.exception("process failed")
            delivery.dead(d, "process", type(exc).__name__, repr(exc), failed.ref.to_json(), 0)
            ready = ready[done + 1:]
    return decided

