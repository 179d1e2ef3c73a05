"""The process task's work on a batch: extract the pages one by one, decide them together, record their
ends; each page fails alone."""

from __future__ import annotations

from typing import Any

import structlog
from celery.exceptions import SoftTimeLimitExceeded

from ..extract.furniture import Template
from ..fetch.politeness import host_of
from ..logs import get_logger
from ..metrics import MetricsBatch
from ..models import Outcome, PageRef
from ..pipeline.deps import Deps
from ..pipeline.process import (
    MAX_REFETCHES,
    PageWork,
    extract_page,
    finish_pages,
    gone_pages,
    settle,
)
from . import delivery
from .batches import enqueue_fetch, enqueue_process, summary, time_left

log = get_logger("wire.tasks")


def page_refs(items: list[Any]) -> tuple[list[PageRef], list[tuple[Any, str]]]:
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


def process_batch(d: Deps, work: list[PageRef], pages: list[bytes | None], started: float,
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
        if i and not time_left(d, started, 0.0):
            enqueue_process([ref.to_json() for ref in work[i:]])
            log.info("batch handed on: time limit near", stage="process", items=len(work) - i)
            break
        try:
            got = extract_one(d, ref, page, batch, (templates or {}).get(host_of(ref.final_url)))
        except SoftTimeLimitExceeded:
            if i + 1 < len(work):
                enqueue_process([ref.to_json() for ref in work[i + 1:]])
                log.info("batch handed on: time limit struck", stage="process", items=len(work) - i - 1)
            break
        if got is not None:
            (ended if got.doc is None else ready).append(got)
    gone = [w for w in ended if w.outcome is not None and w.outcome.reason == "page_gone"]
    if gone:
        ended = [w for w in ended if w not in gone] + refetch_gone(d, gone)
    ended += decide(d, ready, batch)
    finish_pages(ended, d, batch)
    for w in ended:
        assert w.outcome is not None
        with structlog.contextvars.bound_contextvars(source=w.ref.source, url=w.ref.url):
            summary("process", w.started, w.outcome, story_id=w.outcome.story_id, story_event=w.outcome.event)


def refetch_gone(d: Deps, gone: list[PageWork]) -> list[PageWork]:
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


def extract_one(d: Deps, ref: PageRef, page: bytes | None, batch: MetricsBatch,
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


def decide(d: Deps, ready: list[PageWork], batch: MetricsBatch) -> list[PageWork]:
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
