"""The delivery policy of the tasks: what becomes of a task that did not simply succeed.

- a task whose Redis went away under it is handed back to the broker
  (`requeue_if_redis_down`), never failed and acked;
- every delivery is counted (`count_delivery`), so a poison page (one that
  kills its worker every time) is not redelivered forever;
- a batch delivered again comes back one item per task (`split`);
- transient errors are retried with backoff and jitter (`backoff`); waits
  too long for a broker countdown are parked in Redis (`park`);
- after the last attempt, the item is dead-lettered (`dead`), and so is an
  item that is not one (`malformed`): each item of a batch ends on its own.
"""

from __future__ import annotations

import contextlib
import json
import random
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit

import redis
from celery import Task
from celery.exceptions import Reject

from ..keys import ATTEMPTS_TTL, WRITE_PROBE_TTL
from ..logs import get_logger
from ..pipeline.deps import Deps
from ..publish import dead_letter
from ..trail import event
from . import outage

log = get_logger("wire.tasks")
MAX_PARKS = 50  # a URL parked this often (host paused for hours) is dead-lettered
REDIS_WAIT = 15.0  # seconds a task whose Redis call failed waits for Redis before requeueing

Batch = dict[str, Any] | list[dict[str, Any]]  # a task's work: one item, or a batch of them


def items(work: Batch) -> list[dict[str, Any]]:
    return work if isinstance(work, list) else [work]


def compact(work: Batch) -> Batch:
    """A one-item batch as the item itself: the message a single URL or page has always been."""
    return work[0] if isinstance(work, list) and len(work) == 1 else work


def redis_down(exc: BaseException | None) -> bool:
    """`exc`, or an exception it was raised from, says Redis could not take the work: it did not
    answer (down, restarting, loading), or it refused a write for lack of memory (see `outage`)."""
    return outage.unavailable(exc)


def requeue(d: Deps, stage: str, exc: BaseException, task: Task | None = None) -> Reject:
    """The Reject that hands the task back when Redis went away under it.

    Failing the task would ack its message and lose the page (acks_on_failure);
    a requeued message is delivered again, and every stage is idempotent. We
    wait (bounded) for Redis to take a write first, so the requeue itself can
    reach it; if it cannot, the message stays in the broker's unacked set and
    is requeued once Redis takes writes again (`broker.QoS`), or by the reaper
    should this worker stop first. Nothing is lost either way.
    """
    # a write, not a PING: a Redis out of memory answers PING and refuses writes
    if outage.wait_writable(lambda: d.redis.set(d.keys.write_probe(), 1, ex=WRITE_PROBE_TTL), REDIS_WAIT) and (
            task is not None and getattr(task.request, "wire_counted", False)):
        # an outage is not an attempt: only deliveries that crashed may make a task poison
        with contextlib.suppress(redis.RedisError):
            d.redis.decr(d.keys.attempts(str(task.request.id)))
    log.warning("redis unavailable: task requeued", stage=stage, reason=outage.reason(exc), error=repr(exc))
    return Reject(exc, requeue=True)


@contextmanager
def requeue_if_redis_down(d: Deps, stage: str, task: Task | None = None) -> Iterator[None]:
    """Around a task body: a failure because Redis went away requeues the task (`requeue`)."""
    try:
        yield
    except Exception as exc:
        if redis_down(exc):  # includes a retry or an enqueue that could not reach the broker
            raise requeue(d, stage, exc, task) from exc
        raise


def count_delivery(d: Deps, task: Task, pipe: Any) -> None:
    """Queue the count of this delivery of the task (retries and crash redeliveries alike) on `pipe`."""
    key = d.keys.attempts(str(task.request.id))
    pipe.incr(key)
    pipe.expire(key, ATTEMPTS_TTL)


def deliveries(d: Deps, task: Task) -> int:
    """Count this delivery of the task; the count so far."""
    pipe = d.redis.pipeline(transaction=False)
    count_delivery(d, task, pipe)
    count = int(pipe.execute()[0])
    task.request.wire_counted = True  # for `requeue`
    return count


def done(d: Deps, task: Task, queue: str) -> None:
    """Finishing a task: its delivery count dropped, the queue's heartbeat."""
    pipe = d.redis.pipeline(transaction=False)
    pipe.delete(d.keys.attempts(str(task.request.id)))
    pipe.hset(d.keys.heartbeat(), queue, time.time())
    pipe.execute()


def backoff(retries: int, cap: float) -> float:
    """Exponential backoff with jitter: 1-2 s, 2-4 s, 4-8 s ... capped at `cap`."""
    base = min(cap / 2, 2.0 ** retries)
    return base + random.uniform(0, base)


def park(d: Deps, candidate: Batch, *, force: bool, parks: int, not_before: float, reason: str,
         events: list[dict[str, Any]] | tuple[()] = ()) -> None:
    """Hold a URL in Redis until `not_before` instead of in a broker ETA (see queue/app.py).

    Each candidate's trail records it, the first one's after `events` (its fetch attempt).
    """
    member = json.dumps({"candidate": compact(candidate), "force": force, "parks": parks + 1}, sort_keys=True)
    pipe = d.redis.pipeline(transaction=False)
    pipe.zadd(d.keys.parked(), {member: not_before})
    now = time.time()
    for i, c in enumerate(items(candidate)):
        parked = event("parked", now, reason=reason, until=round(not_before, 3))
        d.trail.add(pipe, str(c["url"]), *(events if i == 0 else ()), parked)
    pipe.execute()


def split(d: Deps, task: Task, stage: str, work: list[dict[str, Any]],
          enqueue: Callable[[dict[str, Any]], None]) -> None:
    """A batch delivered again (its worker died, or Redis went away under it) comes back one item per task.

    Every stage is idempotent, so redoing the items already done costs work and
    publishes nothing twice; and a page that kills its worker every time is now
    alone in its task, where the delivery count caps it (a batch would take
    its neighbours down with it on every delivery).
    """
    for item in work:
        enqueue(item)
    log.warning("batch delivered again: split into single tasks", stage=stage, items=len(work))
    done(d, task, stage)


def malformed(item: Any, fields: tuple[str, ...] = ("url", "source")) -> str | None:
    """What makes `item` no task item (None: nothing): not a JSON object, or a field missing,
    not a string, or a `url` that cannot even be parsed. A parseable URL wire will not fetch
    (`file:`, a private address) is the fetcher's to refuse, with its reason."""
    if not isinstance(item, dict):
        return f"not an object but {type(item).__name__}"
    for name in fields:
        value = item.get(name)
        if value is None:
            return f"{name} missing"
        if not isinstance(value, str) or not value:
            return f"{name} is not a non-empty string: {value!r:.100}"
    try:
        urlsplit(item["url"]).port  # noqa: B018 - parsing is the check: brackets and port raise ValueError
    except ValueError as exc:
        return f"url unparseable: {exc}"
    return None


def dead(d: Deps, stage: str, reason: str, error: str, payload: Any, retries: int,
         events: list[dict[str, Any]] | tuple[()] = ()) -> None:
    """Dead-letter one work item with what replays it, and record it in its URL's trail after `events`.

    Candidates and page refs carry `url` and `source`; a malformed item may
    carry neither, or not be an object at all (it is kept under `item`).
    """
    if not isinstance(payload, dict):
        payload = {"item": payload}
    url, source = payload.get("url"), payload.get("source")
    url = url if isinstance(url, str) else None
    dead_letter(d.redis, d.keys, stage=stage, reason=reason, error=error, url=url,
                source=source if isinstance(source, str) else None, payload=payload, attempts=retries + 1,
                trail=d.trail, events=events)
    log.warning("dead-lettered", stage=stage, reason=reason, error=error, url=url)
