"""`wire run`: everything on one machine, under one Ctrl-C.

Starts (when no WIRE_REDIS_URL is set) a private Redis in the data folder,
then a fetch worker (threads: fetching waits on the network), a process
worker (prefork: extraction is CPU-bound), beat and the HTTP server, each as
a child in its own process group so stopping leaves nothing behind. Each
child also dies with `wire run` if it is killed (worker.ops.orphans), so a
restart finds the port free and the dead run's messages are recovered by
liveness (worker.queue.liveness).

It says where things are before anything else, in plain lines on stderr
whatever the log format: the console's URL, its Redis, its sources file and
the line to export for the ops commands of another shell. It writes the
same into its run file (worker.ops.runfile), which the ops commands started
from the same folder read by themselves. Then a one-line summary of
progress every 10 s, and on stop what it leaves queued and in flight.
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

from ..keys import BROKER_UNACKED, Keys, as_text
from ..settings import Settings, SourcesConfig
from ..urls import redact_text
from . import malloc, orphans, ports, runfile
from .redis_server import RedisProcess, free_port, start_embedded

STOP_GRACE = 30.0


def _children(settings: Settings) -> list[tuple[str, list[str]]]:
    me = [sys.executable, "-m", "worker.ops.cli"]
    return [
        ("worker-fetch", me + ["worker", "--queues", "discover,fetch", "--pool", "threads",
                               "--concurrency", str(settings.fetch_concurrency), "--name", "fetch", "--quiet"]),
        ("worker-process", me + ["worker", "--queues", "process", "--pool", "prefork",
                                 "--concurrency", str(settings.process_concurrency), "--name", "process",
                                 "--quiet"]),
        ("beat", me + ["beat", "--quiet"]),
        ("serve", me + ["serve"]),
    ]


def summary_line(client: redis.Redis, keys: Keys) -> str:
    stats = {as_text(k): int(float(v)) for k, v in client.hgetall(keys.stats()).items()}
    fields = ("discovered", "fetched", "published", "duplicates", "skipped", "failed")
    return "progress " + " ".join(f"{f}={stats.get(f, 0)}" for f in fields)


def leftover_line(broker: redis.Redis, client: redis.Redis, keys: Keys) -> str:
    """What a stopped run leaves for the next start: tasks queued (per queue), in flight, parked."""
    from .status import queue_depths

    depths = queue_depths(broker)
    queued = sum(depths.values())
    per_queue = ", ".join(f"{q} {n}" for q, n in depths.items() if n)
    return (f"left {queued} tasks queued{f' ({per_queue})' if per_queue else ''}, "
            f"{int(broker.hlen(BROKER_UNACKED))} in flight, {int(client.zcard(keys.parked()))} parked")


def console_url(host: str, port: int) -> str:
    """The console's URL as a browser on this machine reaches it (a wildcard address is reached on loopback)."""
    shown = {"0.0.0.0": "127.0.0.1", "": "127.0.0.1", "::": "::1"}.get(host, host)
    return f"http://{f'[{shown}]' if ':' in shown else shown}:{port}/"


def start_lines(info: runfile.RunInfo, sources: SourcesConfig, embedded: RedisProcess | None,
                run_file: Path) -> list[str]:
    """Where things are, said once at start (plain lines, whatever the log format); the export line
    stands alone, indented, to be copied whole."""
    redis_line = (f"wire: embedded Redis on {info.redis_url} (data in {embedded.data_dir})" if embedded
                  else f"wire: Redis {redact_text(info.redis_url)} (WIRE_REDIS_URL)")
    count = len(sources.sources)
    return [
        f"wire: console and metrics on {info.console_url}",
        redis_line,
        f"wire: sources from {info.sources} ({count} source{'s' if count != 1 else ''})",
        f"wire: ops commands (status, explain, reingest, dlq) run here find this run in {run_file}; "
        "in another folder or shell, first:",
        f"  {info.export_line()}",
    ]


def run(settings: Settings, sources: SourcesConfig, *, progress_every: float = 10.0) -> int:
    env = dict(os.environ)
    data = Path(settings.data_dir).resolve()
    # before anything starts: another run on this data folder, WIRE_MALLOC=jemalloc without the library,
    # a port taken (by an earlier run's server, say): each one line, not a child's traceback
    runfile.check_free(data)
    allocator = malloc.choose(settings.malloc, env, library=malloc.find_jemalloc())
    ports.ensure_free(settings.metrics_host, settings.metrics_port, "WIRE_METRICS_PORT")
    port = settings.metrics_port or free_port()  # 0: any free port, chosen here so it can be printed
    env["WIRE_METRICS_PORT"] = str(port)
    env.update(allocator.env)
    me = os.getpid()
    env[orphans.PARENT_ENV] = str(me)
    embedded: RedisProcess | None = None
    if not settings.redis_url:
        # SIGTERM, not SIGKILL: Redis writes its AOF out and exits at once
        embedded = start_embedded(data / "redis", preexec_fn=orphans.preexec(me, signal.SIGTERM))
        env["WIRE_REDIS_URL"] = embedded.url
    redis_url = env["WIRE_REDIS_URL"]
    env["WIRE_SOURCES"] = str(Path(settings.sources_path).resolve())
    info = runfile.RunInfo(pid=me, started=runfile.started(me), console_url=console_url(settings.metrics_host, port),
                           redis_url=redis_url, sources=env["WIRE_SOURCES"], key_prefix=settings.key_prefix,
                           items_stream=settings.items_stream, broker_url=settings.broker_url)
    for line in start_lines(info, sources, embedded, runfile.path(settings.data_dir)):
        print(line, file=sys.stderr, flush=True)
    procs: list[tuple[str, subprocess.Popen[bytes]]] = []
    stopping = False

    def stop(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    old_int = signal.signal(signal.SIGINT, stop)
    old_term = signal.signal(signal.SIGTERM, stop)
    status = 0
    client = redis.Redis.from_url(redis_url)
    keys = Keys.for_prefix(settings.key_prefix, settings.items_stream)
    try:
        runfile.claim(data, info)
        for name, argv in _children(settings):
            # started from this (main) thread: the death signal follows the thread that forks
            procs.append((name, subprocess.Popen(argv, env=env, start_new_session=True,
                                                 preexec_fn=orphans.preexec(me))))
        print(f"wire: started {', '.join(n for n, _ in procs)} on {allocator.detail}; Ctrl-C stops",
              file=sys.stderr, flush=True)
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
        broker = redis.Redis.from_url(settings.broker_url) if settings.broker_url else client
        try:
            left = leftover_line(broker, client, keys)
        except redis.RedisError as exc:
            left = f"what is left is unknown: redis unavailable: {redact_text(str(exc))}"
        if embedded is not None:
            embedded.stop()
        runfile.release(data, me)
        signal.signal(signal.SIGINT, old_int)
        signal.signal(signal.SIGTERM, old_term)
        print(f"wire: stopped; {left}", file=sys.stderr, flush=True)
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
