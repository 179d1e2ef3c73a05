"""`wire run`: everything on one machine, under one Ctrl-C.

Starts (when no WIRE_REDIS_URL is set) a private Redis in the data folder,
then a fetch worker (threads: fetching waits on the network), a process
worker (prefork: extraction is CPU-bound), beat and the HTTP server, each as
a child in its own process group so stopping leaves nothing behind. Each
child also dies with `wire run` if it is killed (worker.ops.orphans), so a
restart finds the port free and the dead run's messages are recovered by
liveness (worker.queue.liveness). Prints a one-line summary of progress every few
seconds.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import redis

from ..keys import Keys, as_text
from ..settings import Settings
from . import malloc, orphans, ports
from .redis_server import RedisProcess, start_embedded

STOP_GRACE = 30.0


def _children(settings: Settings) -> list[tuple[str, list[str]]]:
    me = [sys.executable, "-m", "worker.ops.cli"]
    return [
        ("worker-fetch", me + ["worker", "--queues", "discover,fetch", "--pool", "threads",
                               "--concurrency", str(settings.fetch_concurrency), "--name", "fetch"]),
        ("worker-process", me + ["worker", "--queues", "process", "--pool", "prefork",
                                 "--concurrency", str(settings.process_concurrency), "--name", "process"]),
        ("beat", me + ["beat"]),
        ("serve", me + ["serve"]),
    ]


def summary_line(client: redis.Redis, keys: Keys) -> str:
    stats = {as_text(k): int(float(v)) for k, v in client.hgetall(keys.stats()).items()}
    fields = ("discovered", "fetched", "published", "duplicates", "skipped", "failed")
    return "progress " + " ".join(f"{f}={stats.get(f, 0)}" for f in fields)


def run(settings: Settings, *, progress_every: float = 10.0) -> int:
    env = dict(os.environ)
    # before anything starts: WIRE_MALLOC=jemalloc without the library is a config error,
    # and a port taken (by an earlier run's server, say) is one line, not a child's traceback
    allocator = malloc.choose(settings.malloc, env, library=malloc.find_jemalloc())
    ports.ensure_free(settings.metrics_host, settings.metrics_port, "WIRE_METRICS_PORT")
    env.update(allocator.env)
    me = os.getpid()
    env[orphans.PARENT_ENV] = str(me)
    embedded: RedisProcess | None = None
    if not settings.redis_url:
        data = Path(settings.data_dir).resolve() / "redis"
        # SIGTERM, not SIGKILL: Redis writes its AOF out and exits at once
        embedded = start_embedded(data, preexec_fn=orphans.preexec(me, signal.SIGTERM))
        env["WIRE_REDIS_URL"] = embedded.url
        print(f"wire: embedded Redis on {embedded.url} (data in {data})", file=sys.stderr, flush=True)
    redis_url = env["WIRE_REDIS_URL"]
    env["WIRE_SOURCES"] = str(Path(settings.sources_path).resolve())
    procs: list[tuple[str, subprocess.Popen[bytes]]] = []
    stopping = False

    def stop(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    old_int = signal.signal(signal.SIGINT, stop)
    old_term = signal.signal(signal.SIGTERM, stop)
    status = 0
    try:
        for name, argv in _children(settings):
            # started from this (main) thread: the death signal follows the thread that forks
            procs.append((name, subprocess.Popen(argv, env=env, start_new_session=True,
                                                 preexec_fn=orphans.preexec(me))))
        print(f"wire: started {', '.join(n for n, _ in procs)} on {allocator.detail}; Ctrl-C stops",
              file=sys.stderr, flush=True)
        client = redis.Redis.from_url(redis_url)
        keys = Keys.for_prefix(settings.key_prefix, settings.items_stream)
        next_line = time.monotonic() + progress_every
        while not stopping:
            time.sleep(0.2)
            for name, proc in procs:
                if proc.poll() is not None:
                    print(f"wire: {name} exited with status {proc.returncode}; stopping", file=sys.stderr, flush=True)
                    stopping = True
                    status = 1
            if time.monotonic() >= next_line:
                next_line += progress_every
                try:
                    print(f"wire: {summary_line(client, keys)}", file=sys.stderr, flush=True)
                except redis.RedisError as exc:
                    print(f"wire: redis unavailable: {exc}", file=sys.stderr, flush=True)
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        _stop_all(procs)
        if embedded is not None:
            embedded.stop()
        signal.signal(signal.SIGINT, old_int)
        signal.signal(signal.SIGTERM, old_term)
        print("wire: stopped", file=sys.stderr, flush=True)
    return status


def _stop_all(procs: list[tuple[str, subprocess.Popen[bytes]]]) -> None:
    """SIGTERM every child's process group (warm shutdown), then SIGKILL what is left."""
    for _, proc in procs:
        _signal_group(proc, signal.SIGTERM)
    deadline = time.monotonic() + STOP_GRACE
    for _, proc in procs:
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(max(0.1, deadline - time.monotonic()))
    for _, proc in procs:
        _signal_group(proc, signal.SIGKILL)  # grandchildren (prefork pool) included
        if proc.poll() is None:
            proc.wait()


def _signal_group(proc: subprocess.Popen[bytes], sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, sig)
