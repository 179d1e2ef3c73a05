"""Celery tasks: thin adapters over the pipeline stages, taking JSON primitives only.

Each task reads its message, runs the stage's plain functions on a batch
(`fetching`, `processing`) and hands fetched pages on to process in
batches (`batches` enqueues them); what becomes of an item that does not
simply succeed (requeue, retry, park, dead letter, delivery cap) is the
policy in `delivery`.
"""

from __future__ import annotations

import json
import time

import structlog
from celery import Task, shared_task
from celery.exceptions import SoftTimeLimitExceeded

from ..fetch.politeness import host_of
from ..logs import get_logger
from ..pipeline.deps import Deps
from ..pipeline.discover import discover
from ..pipeline.process import read_furniture
from ..settings import Settings, SourcesConfig
from . import delivery
from .batches import enqueue_fetch, enqueue_fetches, enqueue_process, time_left
from .delivery import Batch
from .fetching import HANDOFF_LINGER, Handoff, fetch_one, well_formed
from .processing import page_refs, process_batch

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
            work = well_formed(d, "fetch", work, ("url", "source"), attempt)
            handoff = Handoff(d.redis, d.settings.process_batch, HANDOFF_LINGER)
            per_fetch = d.fetcher.politeness.max_wait + d.settings.fetch_timeout
            handed: set[str] = set()  # hosts whose URLs of this batch went to another task
            for i, candidate in enumerate(work):
                if i and not time_left(d, started, per_fetch):
                    rest = [c for c in work[i:] if host_of(c.get("url", "")) not in handed]
                    if rest:
                        enqueue_fetch(rest, force=force, parks=parks, attempt=attempt)
                        log.info("batch handed on: time limit near", stage="fetch", items=len(rest))
                    break
                handoff.flush_if_stale()
                if host_of(candidate.get("url", "")) in handed:
                    continue  # handed on with the candidate that found its host paused or slow
                try:
                    ref = fetch_one(d, candidate, work[i + 1:], handed, handoff.pipe, force=force, parks=parks,
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


@shared_task(name="wire.process", bind=True, ignore_result=True)
def process_task(self: Task, refs: Batch) -> None:
    """Extract, deduplicate and publish one fetched page or a batch of them."""
    d = deps()
    started = time.monotonic()
    structlog.contextvars.bind_contextvars(task_id=self.request.id)
    try:
        with delivery.requeue_if_redis_down(d, "process", self):
            work, malformed = page_refs(delivery.items(refs))
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
            process_batch(d, work, pages, started, templates)
            delivery.done(d, self, "process")
    finally:
        structlog.contextvars.clear_contextvars()
