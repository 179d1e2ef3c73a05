"""What every `wire` command shares: settings and sources read once, the Redis-backed dependencies,
the Celery app, and the senders that enqueue fetch, process and discovery tasks."""

from __future__ import annotations

import os
from typing import Any

import click

from ...settings import Settings, SourcesConfig, load_sources


def load_settings() -> Settings:
    return Settings.from_env()


def read_sources(settings: Settings, path: str | None = None) -> SourcesConfig:
    return load_sources(path or settings.sources_path)


def ops_settings(redis_url: str | None = None) -> Settings:
    """Settings of a command that talks to a running wire (status, explain, reingest, dlq, health): the
    environment's, filled in from the `wire run` of this folder when it names no Redis (worker.ops.runfile).
    `redis_url` is a command's --redis-url. Which run is used, or why a run file is not, goes to stderr."""
    from ..runfile import path, settings_for

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


def open_deps(settings: Settings, sources: SourcesConfig) -> Any:
    from ...pipeline.deps import Deps

    if not settings.redis_url:
        raise click.ClickException("WIRE_REDIS_URL is not set (only `wire run` starts an embedded Redis)")
    return Deps.create(settings, sources)


def celery_app(settings: Settings, sources: SourcesConfig) -> Any:
    from ...queue.app import create_app

    return create_app(settings, sources)


def configure_logs(settings: Settings) -> None:
    from ...logs import configure

    configure(settings.log_format, settings.log_level)


def die_with_run() -> None:
    """Started by `wire run`: die with it, even where the kernel's parent-death signal is unavailable."""
    from ..orphans import guard

    guard()


def enqueuer(app: Any) -> Any:
    def enqueue(candidate: dict[str, Any], force: bool) -> None:
        app.send_task("wire.fetch", args=[candidate], kwargs={"force": force}, queue="fetch")

    return enqueue


def replayer(app: Any) -> Any:
    """Re-enqueue a dead letter at the stage that failed (CLI and console share it)."""
    from ..dlq import stage_replayer

    return stage_replayer(enqueuer(app),
                          lambda payload: app.send_task("wire.process", args=[payload], queue="process"))


def rediscoverer(app: Any) -> Any:
    def rediscover(source: str) -> None:
        app.send_task("wire.discover", args=[source], queue="discover")

    return rediscover
