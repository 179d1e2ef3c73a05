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
from celery.exceptions import Reject

from . import pipeline
from .errors import FetchError, HostPaused, TransientFetchError
from .keys import ATTEMPTS_TTL, as_text
from .logs import get_logger
from .models import Candidate, Outcome
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


def _done_ops(task: Task, queue: str) -> Callable[[Any], None]:
    """What finishing a task writes (its delivery count dropped, the queue's heartbeat), for a pipeline."""
    d = deps()
    attempts = d.keys.attempts(str(task.request.id))

    def ops(pipe: Any) -> None:
        pipe.delete(attempts)
        pipe.hset(d.keys.heartbeat(), queue, time.time())

    return ops


def _done(task: Task, queue: str) -> None:
    pipe = deps().redis.pipeline(transaction=False)
    _done_ops(task, queue)(pipe)
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
                report = pipeline.discover(source, d, enqueue=lambda c: enqueue_fetch(c.to_json()))
                log.info("discovered", found=report.found, new=len(report.new), errors=len(report.errors),
                         duration_ms=round((time.monotonic() - started) * 1000, 1))
                for err in report.errors[:5]:
                    log.warning("discovery error", error=err)
            finally:
                _done(self, "discover")
    finally:
        structlog.contextvars.clear_contextvars()


def enqueue_fetch(candidate: dict[str, Any], *, force: bool = False, parks: int = 0,
                  countdown: float | None = None) -> None:
    fetch_task.apply_async(args=[candidate], kwargs={"force": force, "parks": parks},
                           queue="fetch", countdown=countdown)


def park(candidate: dict[str, Any], *, force: bool, parks: int, not_before: float) -> None:
    """Hold a URL in Redis until `not_before` instead of in a broker ETA (see celery_app)."""
    d = deps()
    member = json.dumps({"candidate": candidate, "force": force, "parks": parks + 1}, sort_keys=True)
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


@shared_task(name="wire.fetch", bind=True, ignore_result=True, max_retries=None)
def fetch_task(self: Task, candidate: dict[str, Any], force: bool = False, parks: int = 0) -> None:
    d = deps()
    started = time.monotonic()
    cand = Candidate.from_json(candidate)
    structlog.contextvars.bind_contextvars(task_id=self.request.id, source=cand.source, url=cand.url)
    try:
        with _requeue_if_redis_down("fetch"):
            deliveries = _deliveries(self)
            if deliveries > d.settings.max_attempts + 1:
                _dead(self, "fetch", "poison", f"delivered {deliveries} times without finishing", cand, candidate)
                return
            try:
                # finishing rides on the stage's own last round trip (see the end of this task)
                result = pipeline.fetch(cand, d, force=force, on_finish=_done_ops(self, "fetch"))
            except HostPaused as exc:
                wait = exc.retry_after or 30.0
                if parks >= MAX_PARKS:
                    _dead(self, "fetch", exc.reason, str(exc), cand, candidate)
                    return
                if wait <= d.settings.max_countdown:
                    enqueue_fetch(candidate, force=force, parks=parks + 1, countdown=wait)
                else:
                    park(candidate, force=force, parks=parks, not_before=time.time() + wait)
                _summary("fetch", started, None, status="parked", reason=exc.reason, wait_s=round(wait, 1))
                return
            except TransientFetchError as exc:
                if self.request.retries + 1 >= d.settings.max_attempts:
                    _dead(self, "fetch", exc.reason, str(exc), cand, candidate)
                    return
                wait = exc.retry_after if exc.retry_after is not None else _backoff(self.request.retries, d.settings.max_countdown)
                if wait > d.settings.max_countdown:
                    park(candidate, force=force, parks=parks, not_before=time.time() + wait)
                    _summary("fetch", started, None, status="parked", reason=exc.reason, wait_s=round(wait, 1))
                    return
                _summary("fetch", started, None, status="retry", reason=exc.reason, wait_s=round(wait, 1))
                _done(self, "fetch")  # the retry is a new delivery with its own count
                raise self.retry(countdown=wait, exc=exc) from None
            except FetchError as exc:  # a permanent error not already turned into an outcome
                _dead(self, "fetch", exc.reason, str(exc), cand, candidate)
                return
            # _done's writes went with the page (or the outcome): a crash before the enqueue below
            # redelivers with a fresh count, and the fetch is simply done again
            if isinstance(result, pipeline.Fetched):
                process_task.apply_async(args=[result.ref], queue="process")
                _summary("fetch", started, None, status="fetched")
            else:
                _summary("fetch", started, result)
    finally:
        structlog.contextvars.clear_contextvars()


@shared_task(name="wire.process", bind=True, ignore_result=True)
def process_task(self: Task, ref: dict[str, Any]) -> None:
    d = deps()
    started = time.monotonic()
    structlog.contextvars.bind_contextvars(task_id=self.request.id, source=ref.get("source"), url=ref.get("url"))
    try:
        with _requeue_if_redis_down("process"):
            # one round trip: count this delivery and read the page
            pipe = d.redis.pipeline(transaction=False)
            _count_delivery(self, pipe)
            pipe.get(ref["page_key"])
            deliveries, _, page = pipe.execute()
            if int(deliveries) > d.settings.max_attempts:
                _dead(self, "process", "poison", f"delivered {deliveries} times without finishing",
                      Candidate(url=ref["url"], source=ref["source"]), ref)
                d.redis.delete(ref["page_key"])
                return
            try:
                # _done's writes go in the same round trip as the outcome
                outcome = pipeline.process_page(ref, page, d, on_finish=_done_ops(self, "process"))
            except Exception as exc:  # extraction or dedup bug: keep the page, record why
                if redis_down(exc):
                    raise
                log.exception("process failed")
                _dead(self, "process", type(exc).__name__, repr(exc), Candidate(url=ref["url"], source=ref["source"]), ref)
                return
            _summary("process", started, outcome, story_id=outcome.story_id, story_event=outcome.event)
    finally:
        structlog.contextvars.clear_contextvars()


def _dead(task: Task, stage: str, reason: str, error: str, cand: Candidate, payload: dict[str, Any]) -> None:
    d = deps()
    dead_letter(d.redis, d.keys, stage=stage, reason=reason, error=error, url=cand.url, source=cand.source,
                payload=payload, attempts=task.request.retries + 1)
    log.warning("dead-lettered", stage=stage, reason=reason, error=error)
    _done(task, stage)
