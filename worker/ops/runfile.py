"""The run file: how the ops commands find the `wire run` started from the same folder.

`wire run` writes `<WIRE_DATA_DIR>/run.json` once its Redis answers and
removes it when it stops. It holds what an ops command needs to talk to that
run (its Redis, its sources file, its key prefix) and what a person needs to
find it (its pid, the console's URL). A command run with no `WIRE_REDIS_URL`
reads it from its own `WIRE_DATA_DIR` (default `data`, relative to the
folder it runs in), and the run's values fill in only the variables the
command's environment leaves unset.

A file whose process is gone (a `wire run` that was SIGKILLed or lost its
machine) is stale: ignored with a note, and replaced by the next `wire run`.
The process is identified by its pid and its start time, so a pid reused by
an unrelated process does not pass for the run. The file may hold a Redis
password (an explicit `WIRE_REDIS_URL`), so only its owner can read it.
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import tempfile
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import psutil

from ..errors import RunInProgress
from ..settings import Settings
from ..urls import redact_text

NAME = "run.json"


@dataclass(frozen=True)
class RunInfo:
    pid: int
    started: float  # the process's start time (psutil create_time): tells the run from a reused pid
    console_url: str
    redis_url: str
    sources: str  # absolute path
    key_prefix: str
    items_stream: str | None = None  # set only when the run had WIRE_ITEMS_STREAM
    broker_url: str | None = None  # set only when the run had WIRE_BROKER_URL

    def env(self) -> dict[str, str]:
        """The `WIRE_` variables that point a command at this run (those it set, nothing else)."""
        out = {"WIRE_REDIS_URL": self.redis_url, "WIRE_SOURCES": self.sources}
        if self.key_prefix != "wire":
            out["WIRE_KEY_PREFIX"] = self.key_prefix
        if self.items_stream:
            out["WIRE_ITEMS_STREAM"] = self.items_stream
        if self.broker_url:
            out["WIRE_BROKER_URL"] = self.broker_url
        return out

    def export_line(self) -> str:
        """The shell line that points the ops commands of another folder or shell at this run."""
        return "export " + " ".join(f"{k}={shlex.quote(redact_text(v))}" for k, v in self.env().items())

    def alive(self) -> bool:
        """Whether the process that wrote this file is still running."""
        try:
            proc = psutil.Process(self.pid)
            return proc.status() != psutil.STATUS_ZOMBIE and abs(proc.create_time() - self.started) < 1.0
        except psutil.Error:
            return False


@dataclass(frozen=True)
class Lookup:
    """What a command found in its data folder: a live run, or why it found none (None: no file at all)."""

    path: Path
    run: RunInfo | None = None
    note: str | None = None


def path(data_dir: str | Path) -> Path:
    return Path(data_dir) / NAME


def started(pid: int) -> float:
    """The start time of process `pid`, as RunInfo.started records it."""
    return float(psutil.Process(pid).create_time())


def parse(text: str) -> RunInfo:
    """A run file's content; ValueError saying what is wrong."""
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"not JSON ({exc.msg})") from None
    if not isinstance(doc, dict):
        raise ValueError("not a JSON object")
    known = {f.name for f in fields(RunInfo)}
    values: dict[str, Any] = {k: v for k, v in doc.items() if k in known}
    for name, kind in (("pid", int), ("started", (int, float)), ("console_url", str), ("redis_url", str),
                       ("sources", str), ("key_prefix", str)):
        if not isinstance(values.get(name), kind) or isinstance(values.get(name), bool):
            raise ValueError(f"field {name!r} missing or of the wrong type")
    for name in ("items_stream", "broker_url"):
        if values.get(name) is not None and not isinstance(values[name], str):
            raise ValueError(f"field {name!r} of the wrong type")
    return RunInfo(**values)


def lookup(data_dir: str | Path) -> Lookup:
    """The live `wire run` whose run file is in `data_dir`, or a one-line note on why the file there is ignored."""
    where = path(data_dir)
    try:
        text = where.read_text(encoding="utf-8")
    except FileNotFoundError:
        return Lookup(where)
    except (OSError, UnicodeDecodeError) as exc:
        return Lookup(where, note=f"ignoring {where}: cannot read it ({getattr(exc, 'strerror', None) or exc})")
    try:
        run = parse(text)
    except ValueError as exc:
        return Lookup(where, note=f"ignoring {where}: not a run file ({exc})")
    if not run.alive():
        return Lookup(where, note=f"ignoring {where}: the wire run that wrote it (pid {run.pid}) is not running")
    return Lookup(where, run=run)


def settings_for(env: Mapping[str, str]) -> tuple[Settings, list[str]]:
    """Settings from `env`, and where `env` names no Redis, from the live run of its WIRE_DATA_DIR too, each
    variable `env` sets still winning; with the lines to say (which run, or why its file is ignored).

    No Redis in the result: `env` names none and no run is alive there.
    """
    env = {k: v for k, v in env.items() if v != ""}
    settings = Settings.from_env(env)
    if settings.redis_url:
        return settings, []
    found = lookup(settings.data_dir)
    if found.run is None:
        return settings, [found.note] if found.note else []
    settings = Settings.from_env({**found.run.env(), **env})
    prefix = f", key prefix {settings.key_prefix}" if settings.key_prefix != "wire" else ""
    return settings, [f"using the wire run of {found.path} (pid {found.run.pid}, console {found.run.console_url}): "
                      f"Redis {redact_text(settings.redis_url or '')}, sources {settings.sources_path}{prefix}"]


def check_free(data_dir: Path, pid: int | None = None) -> None:
    """RunInProgress when a live `wire run` other than `pid` (default: this process) holds `data_dir`."""
    found = lookup(data_dir)
    if found.run is not None and found.run.pid != (os.getpid() if pid is None else pid):
        raise RunInProgress(f"another wire run (pid {found.run.pid}, console {found.run.console_url}) is using "
                            f"{data_dir}: stop it first, or give this one another WIRE_DATA_DIR")


def claim(data_dir: Path, run: RunInfo) -> Path:
    """Write `run`'s file into `data_dir` (check_free first): whole (a temporary file renamed over it), and
    readable by its owner only."""
    check_free(data_dir, run.pid)
    data_dir.mkdir(parents=True, exist_ok=True)
    where = path(data_dir)
    fd, tmp = tempfile.mkstemp(prefix=".run-", suffix=".json", dir=data_dir)  # mode 0600
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump(asdict(run), out, indent=2, sort_keys=True)
            out.write("\n")
        os.replace(tmp, where)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return where


def release(data_dir: Path, pid: int) -> None:
    """Remove the run file if it is still the one process `pid` wrote."""
    where = path(data_dir)
    with contextlib.suppress(OSError, ValueError):
        if parse(where.read_text(encoding="utf-8")).pid == pid:
            where.unlink()
