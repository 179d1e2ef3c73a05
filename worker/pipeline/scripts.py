"""Lua scripts sent on a stage's pipeline as bare EVALSHA, and the pipeline run that reloads them.

A redis-py `Script` called on a pipeline first asks Redis whether the script
is loaded (SCRIPT EXISTS): a round trip of its own on every pipeline. The
process stage ends each batch in one round trip, so its scripts go as bare
EVALSHA (`queue`), and `execute` deals with the one case that needs more:
Redis lost the script (a restart, SCRIPT FLUSH), and the calls it refused go
again once the script is loaded.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import redis
from redis.commands.core import Script

from ..logs import get_logger

log = get_logger("wire.scripts")


def queue(pipe: Any, script: Script, keys: Sequence[str], args: Sequence[Any]) -> None:
    """Queue one call of `script` on `pipe`, with no SCRIPT EXISTS ahead of it."""
    pipe.execute_command("EVALSHA", script.sha, len(keys), *keys, *args)


def execute(pipe: Any, scripts: Sequence[Script]) -> list[Any]:
    """Run `pipe` and return its replies; calls of `scripts` that failed are bookkeeping, not outcomes.

    A call Redis refused for lack of its script is sent again once the script
    is loaded, in one more round trip; a call of one of `scripts` that failed
    otherwise is logged and dropped (what these scripts count never decides a
    page's outcome); any other command's error is raised, as `pipe.execute()`
    would.
    """
    by_sha = {s.sha: s for s in scripts}
    stack = [args for args, _options in pipe.command_stack]
    results: list[Any] = pipe.execute(raise_on_error=False)
    again: list[tuple[Any, ...]] = []
    failed: Exception | None = None
    for args, res in zip(stack, results, strict=True):
        if not isinstance(res, Exception):
            continue
        script = by_sha.get(args[1]) if args[0] == "EVALSHA" else None
        if script is not None and isinstance(res, redis.exceptions.NoScriptError):
            again.append(args)
        elif script is not None:
            log.warning("script call failed", sha=script.sha, error=str(res))
        elif failed is None:
            failed = res
    if failed is not None:
        raise failed
    if again:
        # the pipeline is empty again: load what Redis lost and resend, in order, in one round trip
        shas = sorted({args[1] for args in again})
        for sha in shas:
            pipe.script_load(by_sha[sha].script)
        for args in again:
            pipe.execute_command(*args)
        for res in pipe.execute(raise_on_error=False)[len(shas):]:
            if isinstance(res, Exception):
                log.warning("script call failed", error=str(res))
    return results
