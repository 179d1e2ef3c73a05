"""The `wire` command line. Each command reads settings once and exits non-zero on failure;
configuration errors exit with status 2 and name the file (or variable) and field."""

from __future__ import annotations

import errno
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import click
import redis

from ..errors import ConfigError, PortInUse, ReingestError, WorkerError
from ..keys import Keys
from ..settings import Settings, SourcesConfig, load_sources, require_strong_admin_token


def _settings() -> Settings:
    return Settings.from_env()


def _sources(settings: Settings, path: str | None = None) -> SourcesConfig:
    return load_sources(path or settings.sources_path)


def ops_settings(redis_url: str | None = None) -> Settings:
    """Settings of a command that talks to a running wire (status, explain, reingest, dlq, health): the
    environment's, filled in from the `wire run` of this folder when it names no Redis (worker.ops.runfile).
    `redis_url` is a command's --redis-url. Which run is used, or why a run file is not, goes to stderr."""
    from .runfile import path, settings_for

    env = dict(os.environ)
    if redis_url:
        env["WIRE_REDIS_URL"] = redis_url
    settings, said = settings_for(env)
    for line in said:
        click.echo(f"wire: {line}", err=True)
    if not settings.redis_url:
        raise click.ClickException(f"WIRE_REDIS_URL is not set, and no wire run is running with its data in "
                                   f"{settings.data_dir} (no live {path(settings.data_dir)}): start `wire run` "
                                   "in this folder, or set WIRE_REDIS_URL")
    return settings


def _deps(settings: Settings, sources: SourcesConfig) -> Any:
    from ..pipeline.deps import Deps

    if not settings.redis_url:
        raise click.ClickException("WIRE_REDIS_URL is not set (only `wire run` starts an embedded Redis)")
    return Deps.create(settings, sources)


def _app(settings: Settings, sources: SourcesConfig) -> Any:
    from ..queue.app import create_app

    return create_app(settings, sources)


def _configure_logs(settings: Settings) -> None:
    from ..logs import configure

    configure(settings.log_format, settings.log_level)


def _die_with_run() -> None:
    """Started by `wire run`: die with it, even where the kernel's parent-death signal is unavailable."""
    from .orphans import guard

    guard()


@click.group()
@click.version_option(package_name="wire")
def cli() -> None:
    """wire: discover, fetch, clean, deduplicate and publish news stories."""


@cli.command()
def run() -> None:
    """Everything on one machine: workers, beat and the HTTP server (Ctrl-C stops)."""
    from .run import run as run_all

    settings = _settings()
    sources = _sources(settings)  # fail fast, before starting anything
    require_strong_admin_token(settings.admin_token)
    sys.exit(run_all(settings, sources))


@cli.command()
@click.option("--queues", default="discover,fetch,process", show_default=True)
@click.option("--pool", type=click.Choice(["prefork", "threads", "solo"]), default="prefork", show_default=True)
@click.option("--concurrency", type=int, default=None)
@click.option("--name", default="worker", help="node name prefix (host name is appended)")
@click.option("--quiet", is_flag=True, help="no Celery start-up banner (`wire run` says where things are)")
def worker(queues: str, pool: str, concurrency: int | None, name: str, quiet: bool) -> None:
    """Run a Celery worker on the given queues (container entrypoint)."""
    _die_with_run()
    settings = _settings()
    sources = _sources(settings)
    _configure_logs(settings)
    app = _app(settings, sources)
    client = redis.Redis.from_url(settings.broker)
    from ..logs import get_logger
    from .malloc import in_use

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
        from ..extract import warm_up

        warm_up()  # before the pool forks: its children inherit the loaded date locales (~1.4 s each)
    app.worker_main(argv)


def _wait_for_redis(client: redis.Redis, prefix: str, write: Any = None) -> None:
    """Block until Redis takes a write (`write`, or a probe key under `prefix`), saying once why it waits.

    Workers may start before Redis, or while it is out of memory: a PING
    answers then, the first write does not, and Celery's start-up writes
    (queue bindings) would stop the worker. One line per new reason, not one
    every few seconds.
    """
    from ..keys import WRITE_PROBE_TTL
    from ..logs import get_logger
    from ..queue.outage import describe, reason, wait_writable

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


@cli.command()
@click.option("--quiet", is_flag=True, help="no Celery start-up banner (`wire run` says where things are)")
def beat(quiet: bool) -> None:
    """Run the scheduler that starts discovery of each source on its interval."""
    _die_with_run()
    settings = _settings()
    sources = _sources(settings)
    data = _writable_data_dir(settings)
    _configure_logs(settings)
    app = _app(settings, sources)
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


@cli.command()
@click.option("--host", default=None)
@click.option("--port", type=int, default=None)
def serve(host: str | None, port: int | None) -> None:
    """Serve /metrics, /healthz, /status and POST /reingest."""
    from ..logs import get_logger
    from .serve import serve as make_server

    _die_with_run()
    settings = _settings()
    sources = _sources(settings)
    require_strong_admin_token(settings.admin_token)
    _configure_logs(settings)
    app = _app(settings, sources)
    deps = _deps(settings, sources)
    host = host or settings.metrics_host
    setting = "WIRE_METRICS_PORT" if port is None else "--port"
    port = port if port is not None else settings.metrics_port
    try:
        server = make_server(deps, host, port, _enqueuer(app), _rediscoverer(app), _replayer(app))
    except OSError as exc:
        if exc.errno != errno.EADDRINUSE:
            raise
        from .ports import in_use

        raise PortInUse(in_use(host, port, setting)) from None
    bound_host, bound_port = server.server_address[:2]
    get_logger("wire.serve").info("serving", address=f"http://{bound_host!s}:{bound_port}")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


def _enqueuer(app: Any) -> Any:
    def enqueue(candidate: dict[str, Any], force: bool) -> None:
        app.send_task("wire.fetch", args=[candidate], kwargs={"force": force}, queue="fetch")

    return enqueue


def _replayer(app: Any) -> Any:
    """Re-enqueue a dead letter at the stage that failed (CLI and console share it)."""
    from .dlq import stage_replayer

    return stage_replayer(_enqueuer(app),
                          lambda payload: app.send_task("wire.process", args=[payload], queue="process"))


def _rediscoverer(app: Any) -> Any:
    def rediscover(source: str) -> None:
        app.send_task("wire.discover", args=[source], queue="discover")

    return rediscover


@cli.group()
def sources() -> None:
    """Work with config/sources.yaml."""


@sources.command("check")
@click.argument("path", required=False)
def sources_check(path: str | None) -> None:
    """Validate a sources file (default: $WIRE_SOURCES or config/sources.yaml)."""
    settings = _settings()
    config = _sources(settings, path)
    click.echo(f"{config.path}: {len(config.sources)} sources, {len(config.routes)} routes, OK")


@cli.command()
@click.argument("targets", nargs=-1, required=True)
@click.option("--json", "as_json", is_flag=True, help="one JSON line per page")
@click.option("--source", "source_name", default=None, help="apply this source's rules from sources.yaml")
def extract(targets: tuple[str, ...], as_json: bool, source_name: str | None) -> None:
    """Run extraction on files or URLs and print the result (for writing site rules)."""
    from ..extract import extract as run_extract
    from ..models import Rules

    settings = _settings()
    rules = Rules()
    if source_name:
        found = _sources(settings).get(source_name)
        if found is None:
            raise click.ClickException(f"unknown source {source_name!r}")
        rules = found.rules
    failed = False
    for target in targets:
        try:
            html, url, charset = _load_target(target, settings)
        except (OSError, WorkerError) as exc:
            click.echo(f"{target}: {exc}", err=True)
            failed = True
            continue
        article = run_extract(html, url, charset=charset, rules=rules)
        doc = {"file" if url is None else "url": target, **article.to_json()}
        if as_json:
            click.echo(json.dumps(doc, ensure_ascii=False, sort_keys=True))
        else:
            click.echo(f"== {target}")
            for key in ("title", "authors", "agency", "dateline", "published_at", "modified_at", "language",
                        "canonical_url", "not_article"):
                click.echo(f"{key}: {doc[key]}")
            click.echo("")
            click.echo(article.body)
    if failed:
        sys.exit(1)


def _load_target(target: str, settings: Settings) -> tuple[bytes, str | None, str | None]:
    if target.startswith(("http://", "https://")):
        from ..fetch.http import Limits, get

        resp = get(target, user_agent=settings.user_agent, limits=Limits.from_settings(settings))
        return resp.content, resp.final_url, resp.charset
    return Path(target).read_bytes(), None, None


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="the documented JSON document")
def status(as_json: bool) -> None:
    """Queues, streams, dead letters, sources and workers."""
    from . import status as st

    settings = ops_settings()
    sources = _sources(settings)
    deps = _deps(settings, sources)
    try:
        doc = st.collect(deps.redis, deps.keys, sources, settings)
    except redis.RedisError as exc:
        click.echo(f"redis unreachable at {settings.redis_url}: {exc}", err=True)
        sys.exit(1)
    if as_json:
        click.echo(json.dumps(doc, sort_keys=True, indent=2))
        return
    click.echo(_render_status(doc))


def _render_status(doc: dict[str, Any]) -> str:
    now = doc["time"]

    def age(ts: float | None) -> str:
        return "never" if ts is None else f"{now - ts:.0f}s ago"

    lines = ["QUEUE        DEPTH"]
    lines += [f"{q:<12} {n:>5}" for q, n in doc["queues"].items()]
    lines.append(f"in flight: {doc['in_flight']}   parked: {doc['parked']}   dead letters: {doc['dead_letters']}")
    lines.append("")
    lines.append("STREAM                 LENGTH  GROUP                PENDING    LAG")
    for s in doc["streams"]:
        if not s["groups"]:
            lines.append(f"{s['stream']:<22} {s['length']:>6}")
        for g in s["groups"]:
            lines.append(f"{s['stream']:<22} {s['length']:>6}  {g['group']:<20} {g['pending']:>7} {g['lag']!s:>6}")
    lines.append("")
    lines.append("SOURCE               INTERVAL  LAST DISCOVERY   LAST SUCCESS     ERRORS  STALE")
    for src in doc["sources"]:
        lines.append(f"{src['name']:<20} {src['interval_seconds']:>7.0f}s  {age(src['last_discovery']):<16} "
                     f"{age(src['last_success']):<16} {src['errors']:>6}  {'STALE' if src['stale'] else ''}")
    lines.append("")
    counters = doc["counters"]
    lines.append("totals: " + " ".join(f"{k}={counters.get(k, 0)}" for k in
                                       ("discovered", "fetched", "published", "duplicates", "skipped", "failed")))
    workers = ", ".join(f"{q} {w['age_seconds']:.0f}s ago" for q, w in doc["workers"].items()) or "none seen"
    lines.append(f"last task finished: {workers}")
    lines.append("")
    lines.append("CONSUMER                  QUEUES                PID  HEARTBEAT  IN FLIGHT")
    for c in doc["consumers"]:
        lines.append(f"{str(c['name'])[:25]:<25} {','.join(c['queues'])[:20]:<20} {c['pid']!s:>5}  "
                     f"{c['heartbeat_age_seconds']:>4.0f}s ago {c['in_flight']:>10}")
    if not doc["consumers"]:
        lines.append("none alive")
    lines.append(f"awaiting recovery (held by consumers whose heartbeat expired): {doc['awaiting_recovery']}")
    lines.append(_render_redis_memory(doc["redis"]))
    return "\n".join(lines)


def _render_redis_memory(mem: dict[str, Any]) -> str:
    used = f"{mem['used_memory'] / 1048576:.1f} MiB"
    limit = f"{mem['maxmemory'] / 1048576:.1f} MiB" if mem["maxmemory"] else "no limit"
    state = "OUT OF MEMORY: writes refused, work waits" if mem["oom"] else "ok"
    return (f"redis memory: {used} of {limit} ({mem['maxmemory_policy']}), {state}; "
            f"writes refused since start: {mem['oom_errors']}")


@cli.command()
def health() -> None:
    """Exit 0 when Redis answers and queued work is being consumed, 1 otherwise (container health check)."""
    from . import status as st

    settings = ops_settings()
    deps = _deps(settings, _sources(settings))
    ok, why = st.health(deps.redis, deps.keys, settings)
    click.echo(why)
    sys.exit(0 if ok else 1)


@cli.command("reingest")
@click.option("--url", "urls", multiple=True, help="a URL to fetch again (repeatable)")
@click.option("--source", default=None, help="a configured source name")
@click.option("--since", default=None, help="with --source/--all: only URLs discovered in this window, e.g. 6h")
@click.option("--all", "all_", is_flag=True, help="every configured source")
@click.option("--force", is_flag=True, help="bypass seen-URL and conditional-GET state")
def reingest_cmd(urls: tuple[str, ...], source: str | None, since: str | None, all_: bool, force: bool) -> None:
    """Enqueue re-ingestion of URLs, a source (optionally a time window) or everything."""
    from . import reingest

    settings = ops_settings()
    sources = _sources(settings)
    deps = _deps(settings, sources)
    app = _app(settings, sources)
    req = reingest.Request(urls=urls, source=source, since=since, all=all_, force=force)
    try:
        result = reingest.run(req, deps, _enqueuer(app), _rediscoverer(app))
    except ReingestError as exc:
        raise click.ClickException(str(exc)) from None
    for url in result["enqueued"]:
        click.echo(f"enqueued {url}")
    for name in result["rediscovered"]:
        click.echo(f"discovery started for {name}")
    click.echo(f"{result['count']} URL(s) enqueued{' (force)' if force else ''}")


@cli.group()
def dlq() -> None:
    """The dead-letter stream."""


@dlq.command("list")
@click.option("--count", default=50, show_default=True)
def dlq_list(count: int) -> None:
    from . import dlq as dl

    settings = ops_settings()
    deps = _deps(settings, _sources(settings))
    rows = dl.entries(deps.redis, deps.keys, count=count)
    for e in rows:
        click.echo(f"{e['id']}  {e.get('failed_at', '')}  {e.get('stage', ''):<8} {e.get('reason', ''):<20} "
                   f"{e.get('source', '')}  {e.get('url', '')}")
    click.echo(f"{len(rows)} shown, {int(deps.redis.xlen(deps.keys.dead_stream))} in {deps.keys.dead_stream}")


@dlq.command("show")
@click.argument("entry_id")
def dlq_show(entry_id: str) -> None:
    from . import dlq as dl

    settings = ops_settings()
    deps = _deps(settings, _sources(settings))
    rows = dl.entries(deps.redis, deps.keys, ids=[entry_id])
    if not rows:
        raise click.ClickException(f"no dead letter {entry_id}")
    click.echo(json.dumps(rows[0], indent=2, sort_keys=True))


@dlq.command("replay")
@click.argument("ids", nargs=-1)
@click.option("--all", "all_", is_flag=True)
def dlq_replay(ids: tuple[str, ...], all_: bool) -> None:
    """Re-enqueue dead letters at the stage that failed."""
    from . import dlq as dl

    if not ids and not all_:
        raise click.UsageError("give entry IDs or --all")
    settings = ops_settings()
    sources = _sources(settings)
    deps = _deps(settings, sources)
    app = _app(settings, sources)
    done = dl.replay(deps.redis, deps.keys, None if all_ else list(ids), _replayer(app))
    click.echo(f"{len(done)} dead letter(s) replayed")


@dlq.command("purge")
@click.option("--yes", is_flag=True, help="do not ask for confirmation")
def dlq_purge(yes: bool) -> None:
    from . import dlq as dl

    settings = ops_settings()
    deps = _deps(settings, _sources(settings))
    count = deps.redis.xlen(deps.keys.dead_stream)
    if not yes and not click.confirm(f"Delete all {count} dead letters?", default=False):
        click.echo("nothing deleted")
        return
    click.echo(f"{dl.purge(deps.redis, deps.keys)} dead letter(s) deleted")


def _register_optional() -> None:
    # dedup commands live beside the dedup package
    try:
        from .dedup_cli import dedup, explain
    except ImportError:
        return
    cli.add_command(dedup)
    cli.add_command(explain)
    from .furniture_cli import furniture

    cli.add_command(furniture)


_register_optional()


def main() -> None:
    try:
        cli.main(standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(1)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except ConfigError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    except redis.ConnectionError as exc:
        click.echo(f"error: redis unreachable: {exc}", err=True)
        sys.exit(1)
    except WorkerError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)


if __name__ == "__main__":
    main()
