"""`wire run`, `wire worker`, `wire beat` and `wire serve`: the long-running processes."""

from __future__ import annotations

import errno
import os
import sys
import time
from pathlib import Path
from typing import Any

import click
import redis

from ...errors import ConfigError, PortInUse
from ...keys import Keys
from ...settings import Settings, require_strong_admin_token
from .common import (
    celery_app,
    configure_logs,
    die_with_run,
    enqueuer,
    load_settings,
    open_deps,
    read_sources,
    rediscoverer,
    replayer,
)


@click.command()
def run() -> None:
    """Everything on one machine: workers, beat and the HTTP server (Ctrl-C stops)."""
    from ..run import run as run_all

    settings = load_settings()
    sources = read_sources(settings)  # fail fast, before starting anything
    require_strong_admin_token(settings.admin_token)
    sys.exit(run_all(settings, sources))


@click.command()
@click.option("--queues", default="discover,fetch,process", show_default=True)
@click.option("--pool", type=click.Choice(["prefork", "threads", "solo"]), default="prefork", show_default=True)
@click.option("--concurrency", type=int, default=None)
@click.option("--name", default="worker", help="node name prefix (host name is appended)")
@click.option("--quiet", is_flag=True, help="no Celery start-up banner (`wire run` says where things are)")
def worker(queues: str, pool: str, concurrency: int | None, name: str, quiet: bool) -> None:
    """Run a Celery worker on the given queues (container entrypoint)."""
    die_with_run()
    settings = load_settings()
    sources = read_sources(settings)
    configure_logs(settings)
    app = celery_app(settings, sources)
    client = redis.Redis.from_url(settings.broker)
    from ...logs import get_logger
    from ..malloc import in_use

    # which allocator this process got (LD_PRELOAD is read before Python starts): see worker.ops.malloc
    get_logger("wire.cli").info("worker starting", queues=queues, pool=pool, concurrency=concurrency,
                                malloc=in_use())
    started = Keys.for_prefix(settings.key_prefix).started()
    _wait_for_redis(client, settings.key_prefix, lambda: client.set(started, time.time()))
    argv = (["--quiet"] if quiet else []) + [  # --quiet is an option of the `celery` group, before `worker`
        "worker", "-Q", queues, "-P", pool, "-n", f"{name}@%h", "--without-gossip", "--without-mingle",
        "--loglevel", "WARNING"]
    if concurrency:
        argv += ["-c", str(concurrency)]
    if "process" in queues.split(","):
        from ...extract import warm_up

        warm_up()  # before the pool forks: its children inherit the loaded date locales (~1.4 s each)
    app.worker_main(argv)


def _wait_for_redis(client: redis.Redis, prefix: str, write: Any = None) -> None:
    """Block until Redis takes a write (`write`, or a probe key under `prefix`), saying once why it waits.

    Workers may start before Redis, or while it is out of memory: a PING
    answers then, the first write does not, and Celery's start-up writes
    (queue bindings) would stop the worker. One line per new reason, not one
    every few seconds.
    """
    from ...keys import WRITE_PROBE_TTL
    from ...logs import get_logger
    from ...queue.outage import describe, reason, wait_writable

    log = get_logger("wire.cli")
    said: list[str] = []
    probe = Keys.for_prefix(prefix).write_probe()

    def waiting(exc: BaseException) -> None:
        why = reason(exc)
        if not said or said[-1] != why:
            log.warning("waiting for redis", reason=why, error=describe(exc, client))
            said.append(why)

    wait_writable(write or (lambda: client.set(probe, 1, ex=WRITE_PROBE_TTL)), None, waiting)
    if said:
        log.info("redis takes writes: starting")


@click.command()
@click.option("--quiet", is_flag=True, help="no Celery start-up banner (`wire run` says where things are)")
def beat(quiet: bool) -> None:
    """Run the scheduler that starts discovery of each source on its interval."""
    die_with_run()
    settings = load_settings()
    sources = read_sources(settings)
    data = _writable_data_dir(settings)
    configure_logs(settings)
    app = celery_app(settings, sources)
    _wait_for_redis(redis.Redis.from_url(settings.broker), settings.key_prefix)
    app.Beat(schedule=str(data / "celerybeat-schedule"), loglevel="WARNING", max_interval=5, quiet=quiet,
             scheduler="worker.queue.beat:WireScheduler").run()


def _writable_data_dir(settings: Settings) -> Path:
    """WIRE_DATA_DIR, created; a ConfigError naming it when this user cannot write there.

    In a container the working directory is root's and the user writes only
    to its volume: a relative or mistyped path must say so, not crash-loop
    on a traceback.
    """
    data = Path(settings.data_dir)
    try:
        data.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError("environment", "WIRE_DATA_DIR",
                          f"cannot create {str(data.absolute())!r}: {exc.strerror or exc}") from None
    if not os.access(data, os.W_OK | os.X_OK):
        raise ConfigError("environment", "WIRE_DATA_DIR",
                          f"{str(data.absolute())!r} is not writable by this user (uid {os.getuid()})")
    return data


@click.command()
@click.option("--host", default=None)
@click.option("--port", type=int, default=None)
def serve(host: str | None, port: int | None) -> None:
    """Serve /metrics, /healthz, /status and POST /reingest."""
    from ...logs import get_logger
    from ..serve import serve as make_server

    die_with_run()
    settings = load_settings()
    sources = read_sources(settings)
    require_strong_admin_token(settings.admin_token)
    configure_logs(settings)
    app = celery_app(settings, sources)
    deps = open_deps(settings, sources)
    host = host or settings.metrics_host
    setting = "WIRE_METRICS_PORT" if port is None else "--port"
    port = port if port is not None else settings.metrics_port
    try:
        server = make_server(deps, host, port, enqueuer(app), rediscoverer(app), replayer(app))
    except OSError as exc:
        if exc.errno != errno.EADDRINUSE:
            raise
        from ..ports import in_use

        raise PortInUse(in_use(host, port, setting)) from None
    bound_host, bound_port = server.server_address[:2]
    get_logger("wire.serve").info("serving", address=f"http://{bound_host!s}:{bound_port}")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
