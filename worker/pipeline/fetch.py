"""The fetch stage: fetch one candidate and store its bytes for the process stage.

Crash safety: the page bytes go under a fresh key and process is enqueued;
the conditional-GET validators are saved by process only after the story is
decided, so a crash between the two never turns the retry into a 304.
"""

from __future__ import annotations

import time
from typing import Any

from ..errors import FetchError, PermanentFetchError
from ..fetch import page_store
from ..fetch.fetcher import NotModified
from ..keys import PAGE_TTL
from ..metrics import MetricsBatch
from ..models import Candidate, Outcome, PageRef
from ..trail import event
from .deps import Deps


def fetch(candidate: Candidate, deps: Deps, *, force: bool = False, pipe: Any = None,
          attempt: int = 0) -> PageRef | Outcome:
    """Fetch one candidate; store its bytes for the process stage, which gets the `PageRef`.

    Raises TransientFetchError / HostPaused for the task layer to retry or park;
    permanent failures come back as an Outcome with a reason. With `pipe`
    (a Redis pipeline), the page bytes and the counters are queued on it and
    the caller executes it before handing the page on: a fetch task stores a
    process batch's pages in one round trip. The attempt (number `attempt` + 1)
    and a permanent outcome go to the URL's trail on the same pipeline; a
    transient error's are the caller's to record, with what it does next.
    """
    if pipe is not None:
        return _fetch_into(candidate, deps, force, pipe, attempt)
    own = deps.redis.pipeline(transaction=False)
    result = _fetch_into(candidate, deps, force, own, attempt)
    own.execute()
    return result


def attempt_event(started: float, attempt: int, exc: FetchError) -> dict[str, Any]:
    """The trail event of a fetch attempt that failed with `exc` (`started`: its time.monotonic())."""
    return event("fetch", time.time(), n=attempt + 1, status=exc.status, reason=exc.reason, error=str(exc),
                 ms=round((time.monotonic() - started) * 1000))


def _fetch_into(candidate: Candidate, deps: Deps, force: bool, pipe: Any, attempt: int) -> PageRef | Outcome:
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
        deps.trail.add(pipe, candidate.url, attempt_event(started, attempt, exc),
                       event("skipped", time.time(), stage="fetch", reason=exc.reason))
        return Outcome(status="skipped", reason=exc.reason, detail={"error": str(exc)})
    except FetchError as exc:
        batch.inc("wire_pages_fetched_total", source=source.name, status=_status_label(exc))
        batch.flush(deps.redis, deps.keys.metrics())
        raise
    elapsed = time.monotonic() - started
    batch.observe("wire_fetch_seconds", elapsed, source=source.name)
    now, ms = time.time(), round(elapsed * 1000)
    if isinstance(got, NotModified):
        batch.inc("wire_pages_fetched_total", source=source.name, status="304")
        batch.flush_into(pipe, deps.keys.metrics())
        pipe.hincrby(deps.keys.stats(), "not_modified", 1)
        deps.trail.add(pipe, candidate.url, event("fetch", now, n=attempt + 1, status=304, ms=ms),
                       event("not_modified", now))
        return Outcome(status="not_modified", reason="not_modified")
    batch.inc("wire_pages_fetched_total", source=source.name, status=str(got.status))
    stamp = int(got.fetched_at * 1000)
    page_key = deps.keys.page(candidate.url, stamp)
    pipe.set(page_key, page_store.pack(got.content), ex=PAGE_TTL)
    pipe.hincrby(deps.keys.stats(), "fetched", 1)
    batch.flush_into(pipe, deps.keys.metrics())
    final = got.final_url if got.final_url != candidate.url else None
    deps.trail.add(pipe, candidate.url, event("fetch", now, n=attempt + 1, status=got.status,
                                              bytes=len(got.content), final=final, ms=ms))
    deps.trail.alias(pipe, final, candidate.url)
    return PageRef(url=candidate.url, source=candidate.source, final_url=got.final_url, page_key=page_key,
                   charset=got.charset, etag=got.etag, last_modified=got.last_modified, fetched_at=got.fetched_at,
                   published=candidate.published, force=force)


def _status_label(exc: FetchError) -> str:
    return str(exc.status) if exc.status else exc.reason
