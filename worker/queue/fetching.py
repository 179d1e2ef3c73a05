"""The fetch task's work on a batch: each candidate fetched and ended on its own, fetched pages handed to
the process stage in batches."""

from __future__ import annotations

import time
from typing import Any

import redis
import structlog
from celery.exceptions import SoftTimeLimitExceeded

from ..errors import FetchError, HostPaused, TransientFetchError
from ..fetch.politeness import finite_wait, host_of
from ..logs import get_logger
from ..models import Candidate, PageRef
from ..pipeline.deps import Deps
from ..pipeline.fetch import attempt_event, fetch
from ..trail import event
from . import delivery
from .batches import enqueue_fetch, enqueue_process, summary

log = get_logger("wire.tasks")


class Handoff:
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


def well_formed(d: Deps, stage: str, work: list[Any], fields: tuple[str, ...], attempt: int) -> list[Any]:
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


def fetch_one(d: Deps, candidate: dict[str, Any], rest: list[dict[str, Any]], handed: set[str],
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
            waiting = [candidate] + _on_host(rest, host)
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
            summary("fetch", started, None, status="parked", reason=exc.reason, wait_s=round(wait, 1),
                     urls=len(waiting))
            return None
        except TransientFetchError as exc:
            if exc.reason == "timeout":
                hand_on_host(cand.url, rest, handed, force=force, parks=parks, attempt=attempt)
            tried = attempt_event(started, attempt, exc)
            if attempt + 1 >= d.settings.max_attempts:
                delivery.dead(d, "fetch", exc.reason, str(exc), candidate, attempt, events=[tried])
                return None
            wait = finite_wait(exc.retry_after, delivery.backoff(attempt, d.settings.max_countdown))
            if wait > d.settings.max_countdown:
                delivery.park(d, candidate, force=force, parks=parks, not_before=time.time() + wait,
                              reason=exc.reason, events=[tried])
                summary("fetch", started, None, status="parked", reason=exc.reason, wait_s=round(wait, 1))
                return None
            # a new task with its own delivery count, after a backoff held as a (bounded) countdown
            enqueue_fetch(candidate, force=force, parks=parks, attempt=attempt + 1, countdown=wait)
            d.trail.add(pipe, cand.url, tried, event("retry", time.time(), reason=exc.reason, wait=round(wait, 1)))
            summary("fetch", started, None, status="retry", reason=exc.reason, wait_s=round(wait, 1))
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
            summary("fetch", started, None, status="fetched")
            return result
        summary("fetch", started, result)
        return None


def hand_on_host(url: str, rest: list[dict[str, Any]], handed: set[str], *, force: bool, parks: int,
                  attempt: int) -> None:
    """After a fetch of `url` ran into the deadline, its host's URLs in the rest of the batch go to a task of
    their own (another thread takes it at once): the batch's other hosts are not held behind another slow
    page of that host, a deadline each."""
    host = host_of(url)
    handed.add(host)
    same = _on_host(rest, host)
    if same:
        enqueue_fetch(same, force=force, parks=parks, attempt=attempt)
        log.info("batch handed on: host slow", stage="fetch", items=len(same))


def _on_host(items: list[dict[str, Any]], host: str) -> list[dict[str, Any]]:
    """The batch items whose URL is on `host`."""
    return [c for c in items if host_of(c.get("url", "")) == host]
