"""What the fetch and process tasks share about batches: how one is enqueued, when the rest of one is
handed on, and the log line that ends each page."""

from __future__ import annotations

import os
import time
from typing import Any

from ..logs import get_logger
from ..models import Outcome
from ..pipeline.deps import Deps
from . import delivery
from .delivery import Batch

log = get_logger("wire.tasks")


def _task(name: str) -> Any:
    """The registered task `name` of the current app (what a `shared_task` proxy resolves to)."""
    from celery import current_app

    return current_app.tasks[name]


def summary(stage: str, started: float, outcome: Outcome | None, **extra: Any) -> None:
    log.info("page", stage=stage, pid=os.getpid(), outcome=outcome.status if outcome else extra.pop("status", None),
             reason=outcome.reason if outcome else extra.pop("reason", None),
             duration_ms=round((time.monotonic() - started) * 1000, 1), **extra)


def argsrepr(work: Batch, noun: str) -> str:
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
    _task("wire.fetch").apply_async(args=[delivery.compact(candidates)], kwargs=kwargs, queue="fetch", countdown=countdown,
                           argsrepr=argsrepr(candidates, "URL"), kwargsrepr=repr(kwargs))


def enqueue_fetches(candidates: list[dict[str, Any]], *, size: int, force: bool = False, parks: int = 0) -> None:
    """Fetch tasks of at most `size` candidates each (a task per page costs more than the fetch)."""
    for i in range(0, len(candidates), size):
        enqueue_fetch(candidates[i:i + size], force=force, parks=parks)


def enqueue_process(refs: Batch) -> None:
    _task("wire.process").apply_async(args=[delivery.compact(refs)], queue="process", argsrepr=argsrepr(refs, "page"),
                             kwargsrepr="{}")


def time_left(d: Deps, started: float, per_item: float) -> bool:
    """Whether a batch may start one more item and still end well inside the soft time limit.

    The rest of a batch is handed back as a new task instead: a batch never
    runs into the time limit because of its size.
    """
    return time.monotonic() - started + per_item < d.settings.soft_time_limit / 2
