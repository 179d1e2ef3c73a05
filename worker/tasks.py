"""Celery tasks: thin adapters over `pipeline`, taking JSON primitives only.

What lives here is the delivery policy: retries with backoff and jitter for
transient errors, parking for long waits, dead letters after the last
attempt, and a delivery counter that stops a poison page (one that kills its
worker every time) from being redelivered forever.
"""

from __future__ import annotations

import json
import os
import random
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import redis
import structlog
from celery import Task, shared_task
from celery.exceptions import Reject, SoftTimeLimitExceeded

from . import pipeline
from .errors import FetchError, HostPaused, TransientFetchError
from .keys import ATTEMPTS_TTL, as_text
from .logs import get_logger
from .metrics import MetricsBatch
from .models import Candidate, Outcome
from .politeness import finite_wait, host_of
from .publish import dead_letter
from .settings import Settings, SourcesConfig

log = get_logger("wire.tasks")
MAX_PARKS = 50  # a URL parked this often (host paused for hours) is dead-lettered

_deps: pipeline.Deps | None = None
_config: tuple[Settings, SourcesConfig] | None = None


def init(settings: Settings, sources: SourcesConfig) -> None:
    global _config, _deps
    _config = (settings, sources)
    _deps = None


def deps() -> pipeline.Deps:
    """Per-process dependencies, created lazily so each prefork child gets its own sockets."""
    global _deps
    if _deps is None:
        if _config is None:
            settings = Settings.from_env()
            from .settings import load_sources

            init(settings, load_sources(settings.sources_path))
        assert _config is not None
        _deps = pipeline.Deps.create(*_config)
    return _deps


REDIS_WAIT = 15.0  # seconds a task whose Redis call failed waits for Redis before requeueing


def redis_down(exc: BaseException | None) -> bool:
    """`exc`, or an exception it was raised from, says Redis did not answer (down, restarting, loading)."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, redis.ConnectionError | redis.TimeoutError):  # BusyLoadingError is a ConnectionError
            return True
        seen.add(id(exc))
        exc = exc.__cause__ if exc.__cause__ is not None else None if exc.__suppress_context__ else exc.__context__
    return False


def _requeue(stage: str, exc: BaseException) -> Reject:
    """The Reject that hands the task back when Redis went away under it.

    Failing the task would ack its message and lose the page (acks_on_failure);
    a requeued message is delivered again, and every stage is idempotent. We
    wait (bounded) for Redis first, so the requeue itself can reach it; if it
    cannot, the message stays in kombu's unacked set and is restored after the
    visibility timeout. Nothing is lost either way.
    """
    d = deps()
    deadline = time.monotonic() + REDIS_WAIT
    while time.monotonic() < deadline:
        try:
            d.redis.ping()
            break
        except redis.RedisError:
            time.sleep(0.5)
    log.warning("redis unavailable: task requeued", stage=stage, error=repr(exc))
    return Reject(exc, requeue=True)


@contextmanager
def _requeue_if_redis_down(stage: str) -> Iterator[None]:
    """Around a task body: a failure because Redis went away requeues the task (`_requeue`)."""
    try:
        yield
    except Exception as exc:
        if redis_down(exc):  # includes a retry or an enqueue that could not reach the broker
            raise _requeue(stage, exc) from exc
        raise


def _count_delivery(task: Task, pipe: Any) -> None:
    """Queue the count of this delivery of the task (retries and crash redeliveries alike) on `pipe`."""
    key = deps().keys.attempts(str(task.request.id))
    pipe.incr(key)
    pipe.expire(key, ATTEMPTS_TTL)


def _deliveries(task: Task) -> int:
    """Count this delivery of the task; the count so far."""
    pipe = deps().redis.pipeline(transaction=False)
    _count_delivery(task, pipe)
    return int(pipe.execute()[0])


def _done(task: Task, queue: str) -> None:
    """Finishing a task: its delivery count dropped, the queue's heartbeat."""
    d = deps()
    pipe = d.redis.pipeline(transaction=False)
    pipe.delete(d.keys.attempts(str(task.request.id)))
    pipe.hset(d.keys.heartbeat(), queue, time.time())
    pipe.execute()


def _backoff(retries: int, cap: float) -> float:
    """Exponential backoff with jitter: 1-2 s, 2-4 s, 4-8 s ... capped at `cap`."""
    base = min(cap / 2, 2.0 ** retries)
    return base + random.uniform(0, base)


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
        with _requeue_if_redis_down("discover"):
            try:
                report = pipeline.discover(source, d, enqueue=lambda found: enqueue_fetches(
                    [c.to_json() for c in found], size=d.settings.fetch_batch))
                log.info("discovered", found=report.found, new=len(report.new), errors=len(report.errors),
                         duration_ms=round((time.monotonic() - started) * 1000, 1))
                for err in report.errors[:5]:
                    log.warning("discovery error", error=err)
            finally:
                _done(self, "discover")
    finally:
        structlog.contextvars.clear_contextvars()


Batch = dict[str, Any] | list[dict[str, Any]]  # a task's work: one item, or a batch of them


def _items(work: Batch) -> list[dict[str, Any]]:
    return work if isinstance(work, list) else [work]


def _compact(work: Batch) -> Batch:
    """A one-item batch as the item itself: the message a single URL or page has always been."""
    return work[0] if isinstance(work, list) and len(work) == 1 else work


def _argsrepr(work: Batch, noun: str) -> str:
    """What Flower and task events show of a task's arguments: the item count and the first URL.

    Celery otherwise builds this with its `saferepr` of the whole batch on
    every `apply_async`: ~0.5 ms of CPU for a process batch of 8 pages, as
    much as storing the 8 pages' bytes. The URLs are in the page logs.
    """
    items = _items(work)
    first = str(items[0].get("url", ""))[:200] if items else ""
    plural = "" if len(items) == 1 else "s"
    return f"[{len(items)} {noun}{plural}: {first}{' ...' if len(items) > 1 else ''}]"


def enqueue_fetch(candidates: Batch, *, force: bool = False, parks: int = 0, attempt: int = 0,
                  countdown: float | None = None) -> None:
    """One fetch task for one candidate or a batch of them."""
    kwargs = {"force": force, "parks": parks, "attempt": attempt}
    fetch_task.apply_async(args=[_compact(candidates)], kwargs=kwargs, queue="fetch", countdown=countdown,
                           argsrepr=_argsrepr(candidates, "URL"), kwargsrepr=repr(kwargs))


def enqueue_fetches(candidates: list[dict[str, Any]], *, size: int, force: bool = False, parks: int = 0) -> None:
    """Fetch tasks of at most `size` candidates each (a task per page costs more than the fetch)."""
    for i in range(0, len(candidates), size):
        enqueue_fetch(candidates[i:i + size], force=force, parks=parks)


def enqueue_process(refs: Batch) -> None:
    process_task.apply_async(args=[_compact(refs)], queue="process", argsrepr=_argsrepr(refs, "page"),
                             kwargsrepr="{}")


def park(candidate: Batch, *, force: bool, parks: int, not_before: float) -> None:
    """Hold a URL in Redis until `not_before` instead of in a broker ETA (see celery_app)."""
    d = deps()
    member = json.dumps({"candidate": _compact(candidate), "force": force, "parks": parks + 1}, sort_keys=True)
    d.redis.zadd(d.keys.parked(), {member: not_before})


@shared_task(name="wire.unpark", bind=True, ignore_result=True)
def unpark_task(self: Task) -> int:
    """Move due parked fetches back to the fetch queue (enqueue first, then remove: never lose)."""
    d = deps()
    with _requeue_if_redis_down("unpark"):  # nothing is lost: the parked set keeps whatever was not moved
        due = d.redis.zrangebyscore(d.keys.parked(), "-inf", time.time(), start=0, num=500)
        for member in due:
            data = json.loads(as_text(member))
            enqueue_fetch(data["candidate"], force=data.get("force", False), parks=data.get("parks", 0))
            d.redis.zrem(d.keys.parked(), as_text(member))
        _done(self, "discover")
    return len(due)


def _split(task: Task, stage: str, work: list[dict[str, Any]], enqueue: Callable[[dict[str, Any]], None]) -> None:
    """A batch delivered again (its worker died, or Redis went away under it) comes back one item per task.

    Every stage is idempotent, so redoing the items already done costs work and
    publishes nothing twice; and a page that kills its worker every time is now
    alone in its task, where the delivery count caps it (a batch would take
    its neighbours down with it on every delivery).
    """
    for item in work:
        enqueue(item)
    log.warning("batch delivered again: split into single tasks", stage=stage, items=len(work))
    _done(task, stage)


class _Handoff:
    """Fetched pages go to the process queue in batches of at most `size`, none held past `linger` seconds.

    The pages' bytes and the fetch counters are queued on one Redis pipeline
    (`pipe`, given to `pipeline.fetch`) and written just before their process
    task is enqueued: one round trip per process batch instead of one per page.
    """

    def __init__(self, client: redis.Redis, size: int, linger: float) -> None:
        self.size, self.linger = size, linger
        self.pipe = client.pipeline(transaction=False)
        self.refs: list[dict[str, Any]] = []
        self.since = 0.0

    def add(self, ref: dict[str, Any]) -> None:
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
            enqueue_process(self.refs)
            self.refs = []


HANDOFF_LINGER = 0.5  # seconds a fetched page may wait for others to fill its process batch


def _time_left(d: pipeline.Deps, started: float, per_item: float) -> bool:
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
    work = _items(candidates)
    started = time.monotonic()
    structlog.contextvars.bind_contextvars(task_id=self.request.id)
    try:
        with _requeue_if_redis_down("fetch"):
            deliveries = _deliveries(self)
            if deliveries > 1 and len(work) > 1:
                _split(self, "fetch", work, lambda c: enqueue_fetch(c, force=force, parks=parks, attempt=attempt))
                return
            if deliveries > d.settings.max_attempts + 1:
                _dead("fetch", "poison", f"delivered {deliveries} times without finishing", work[0], attempt)
                _done(self, "fetch")
                return
            handoff = _Handoff(d.redis, d.settings.process_batch, HANDOFF_LINGER)
            per_fetch = d.fetcher.politeness.max_wait + d.settings.fetch_timeout
            paused: set[str] = set()
            for i, candidate in enumerate(work):
                if i and not _time_left(d, started, per_fetch):
                    rest = [c for c in work[i:] if host_of(c.get("url", "")) not in paused]
                    if rest:
                        enqueue_fetch(rest, force=force, parks=parks, attempt=attempt)
                        log.info("batch handed on: time limit near", stage="fetch", items=len(rest))
                    break
                handoff.flush_if_stale()
                if host_of(candidate.get("url", "")) in paused:
                    continue  # handed back with the candidate that found its host paused
                ref = _fetch_one(d, candidate, work[i + 1:], paused, handoff.pipe, force=force, parks=parks,
                                 attempt=attempt)
                if ref is not None:
                    handoff.add(ref)
            # pages are enqueued before the batch counts as done: a crash in between
            # redelivers the batch, which fetches again and publishes nothing twice
            handoff.flush()
            _done(self, "fetch")
    finally:
        structlog.contextvars.clear_contextvars()


def _fetch_one(d: pipeline.Deps, candidate: dict[str, Any], rest: list[dict[str, Any]], paused: set[str],
               pipe: Any, *, force: bool, parks: int, attempt: int) -> dict[str, Any] | None:
    """Fetch one candidate of a batch: the page's ref for process, or None after retrying, parking or skipping.

    The page's writes are queued on `pipe` (the hand-off's), executed before its process task is enqueued.
    """
    started = time.monotonic()
    cand = Candidate.from_json(candidate)
    with structlog.contextvars.bound_contextvars(source=cand.source, url=cand.url):
        try:
            result = pipeline.fetch(cand, d, force=force, pipe=pipe)
        except HostPaused as exc:
            # the rest of the batch on this host would only find it paused too: they wait together
            host = host_of(cand.url)
            paused.add(host)
            waiting = [candidate] + [c for c in rest if host_of(c.get("url", "")) == host]
            wait = finite_wait(exc.retry_after or 30.0, 30.0)
            if parks >= MAX_PARKS:
                for c in waiting:
                    _dead("fetch", exc.reason, str(exc), c, attempt)
                return None
            if wait <= d.settings.max_countdown:
                enqueue_fetch(waiting, force=force, parks=parks + 1, attempt=attempt, countdown=wait)
            else:
                park(waiting, force=force, parks=parks, not_before=time.time() + wait)
            _summary("fetch", started, None, status="parked", reason=exc.reason, wait_s=round(wait, 1),
                     urls=len(waiting))
            return None
        except TransientFetchError as exc:
            if attempt + 1 >= d.settings.max_attempts:
                _dead("fetch", exc.reason, str(exc), candidate, attempt)
                return None
            wait = finite_wait(exc.retry_after, _backoff(attempt, d.settings.max_countdown))
            if wait > d.settings.max_countdown:
                park(candidate, force=force, parks=parks, not_before=time.time() + wait)
                _summary("fetch", started, None, status="parked", reason=exc.reason, wait_s=round(wait, 1))
                return None
            # a new task with its own delivery count, after a backoff held as a (bounded) countdown
            enqueue_fetch(candidate, force=force, parks=parks, attempt=attempt + 1, countdown=wait)
            _summary("fetch", started, None, status="retry", reason=exc.reason, wait_s=round(wait, 1))
            return None
        except FetchError as exc:  # a permanent error not already turned into an outcome
            _dead("fetch", exc.reason, str(exc), candidate, attempt)
            return None
        if isinstance(result, pipeline.Fetched):
            _summary("fetch", started, None, status="fetched")
            return result.ref
        _summary("fetch", started, result)
        return None


@shared_task(name="wire.process", bind=True, ignore_result=True)
def process_task(self: Task, refs: Batch) -> None:
    """Extract, deduplicate and publish one fetched page or a batch of them."""
    d = deps()
    work = _items(refs)
    started = time.monotonic()
    structlog.contextvars.bind_contextvars(task_id=self.request.id)
    try:
        with _requeue_if_redis_down("process"):
            # one round trip: count this delivery and read the pages
            pipe = d.redis.pipeline(transaction=False)
            _count_delivery(self, pipe)
            pipe.mget([ref["page_key"] for ref in work])
            deliveries, _, pages = pipe.execute()
            if int(deliveries) > 1 and len(work) > 1:
                _split(self, "process", work, enqueue_process)
                return
            if int(deliveries) > d.settings.max_attempts:
                ref = work[0]
                _dead("process", "poison", f"delivered {deliveries} times without finishing", ref, int(deliveries) - 1)
                d.redis.delete(ref["page_key"])
                _done(self, "process")
                return
            _process_batch(d, work, pages, started)
            _done(self, "process")
    finally:
        structlog.contextvars.clear_contextvars()


def _process_batch(d: pipeline.Deps, work: list[dict[str, Any]], pages: list[bytes | None], started: float) -> None:
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
    ready: list[pipeline.PageWork] = []  # extracted, for dedup
    ended: list[pipeline.PageWork] = []  # with their outcome
    for i, (ref, page) in enumerate(zip(work, pages, strict=True)):
        if i and not _time_left(d, started, 0.0):
            enqueue_process(work[i:])
            log.info("batch handed on: time limit near", stage="process", items=len(work) - i)
            break
        try:
            got = _extract_one(d, ref, page, batch)
        except SoftTimeLimitExceeded:
            if i + 1 < len(work):
                enqueue_process(work[i + 1:])
                log.info("batch handed on: time limit struck", stage="process", items=len(work) - i - 1)
            break
        if got is not None:
            (ended if got.doc is None else ready).append(got)
    ended += _decide(d, ready, batch)
    pipeline.finish_pages(ended, d, batch)
    for w in ended:
        assert w.outcome is not None
        with structlog.contextvars.bound_contextvars(source=w.ref.get("source"), url=w.ref.get("url")):
            _summary("process", w.started, w.outcome, story_id=w.outcome.story_id, story_event=w.outcome.event)


def _extract_one(d: pipeline.Deps, ref: dict[str, Any], page: bytes | None,
                 batch: MetricsBatch) -> pipeline.PageWork | None:
    """Extract one page of a batch; None when it was dead-lettered (its error is logged and kept)."""
    with structlog.contextvars.bound_contextvars(source=ref.get("source"), url=ref.get("url")):
        try:
            return pipeline.extract_page(ref, page, d, batch)
        except SoftTimeLimitExceeded as exc:
            log.warning("process hit the soft time limit")
            _dead("process", type(exc).__name__, repr(exc), ref, 0)
            raise
        except Exception as exc:  # an extraction bug: keep the page, record why
            if redis_down(exc):
                raise
            log.exception("process failed")
            _dead("process", type(exc).__name__, repr(exc), ref, 0)
            return None


def _decide(d: pipeline.Deps, ready: list[pipeline.PageWork], batch: MetricsBatch) -> list[pipeline.PageWork]:
    """Deduplicate and publish extracted pages in order; those that got their outcome.

    `submit_iter` raises at the page an error belongs to, with every page
    before it decided: that page is dead-lettered and the rest submitted
    again. The soft time limit hands the undecided pages to a new task.
    """
    decided: list[pipeline.PageWork] = []
    while ready:
        docs = [w.doc for w in ready if w.doc is not None]
        stream = d.dedup.submit_iter(docs, now=[w.now for w in ready], publish=[w.publish for w in ready],
                                     maxlen=d.settings.items_maxlen)
        done = 0
        try:
            for w, decision in zip(ready, stream, strict=False):
                pipeline.settle(w, decision, batch)
                decided.append(w)
                done += 1
            return decided
        except SoftTimeLimitExceeded:
            enqueue_process([w.ref for w in ready[done:]])
            log.warning("process hit the soft time limit in dedup: pages handed on", items=len(ready) - done)
            return decided
        except Exception as exc:  # a dedup bug or a failing publish: keep the page, record why
            if redis_down(exc):
                raise
            failed = ready[done]
            with structlog.contextvars.bound_contextvars(source=failed.ref.get("source"), url=failed.ref.get("url")):
                log.exception("process failed")
            _dead("process", type(exc).__name__, repr(exc), failed.ref, 0)
            ready = ready[done + 1:]
    return decided


def _dead(stage: str, reason: str, error: str, payload: dict[str, Any], retries: int) -> None:
    """Dead-letter one candidate or page ref (both carry `url` and `source`) with what replays it."""
    d = deps()
    url, source = str(payload["url"]), str(payload["source"])
    dead_letter(d.redis, d.keys, stage=stage, reason=reason, error=error, url=url, source=source,
                payload=payload, attempts=retries + 1)
    log.warning("dead-lettered", stage=stage, reason=reason, error=error, url=url)
