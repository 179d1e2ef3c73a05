"""`wire dlq list|show|replay|purge`: the dead-letter stream."""

from __future__ import annotations

import json

import click

from .common import celery_app, open_deps, ops_settings, read_sources, replayer


@click.group()
def dlq() -> None:
    """The dead-letter stream."""


@dlq.command("list")
@click.option("--count", default=50, show_default=True)
def dlq_list(count: int) -> None:
    from .. import dlq as dl

    settings = ops_settings()
    deps = open_deps(settings, read_sources(settings))
    rows = dl.entries(deps.redis, deps.keys, count=count)
    for e in rows:
        click.echo(f"{e['id']}  {e.get('failed_at', '')}  {e.get('stage', ''):<8} {e.get('reason', ''):<20} "
                   f"{e.get('source', '')}  {e.get('url', '')}")
    click.echo(f"{len(rows)} shown, {int(deps.redis.xlen(deps.keys.dead_stream))} in {deps.keys.dead_stream}")


@dlq.command("show")
@click.argument("entry_id")
def dlq_show(entry_id: str) -> None:
    from .. import dlq as dl

    settings = ops_settings()
    deps = open_deps(settings, read_sources(settings))
    rows = dl.entries(deps.redis, deps.keys, ids=[entry_id])
    if not rows:
        raise click.ClickException(f"no dead letter {entry_id}")
    click.echo(json.dumps(rows[0], indent=2, sort_keys=True))


@dlq.command("replay")
@click.argument("ids", nargs=-1)
@click.option("--all", "all_", is_flag=True)
def dlq_replay(ids: tuple[str, ...], all_: bool) -> None:
    """Re-enqueue dead letters at the stage that failed."""
    from .. import dlq as dl

    if not ids and not all_:
        raise click.UsageError("give entry IDs or --all")
    settings = ops_settings()
    sources = read_sources(settings)
    deps = open_deps(settings, sources)
    app = celery_app(settings, sources)
    done = dl.replay(deps.redis, deps.keys, None if all_ else list(ids), replayer(app))
    click.echo(f"{len(done)} dead letter(s) replayed")


@dlq.command("purge")
@click.option("--yes", is_flag=True, help="do not ask for confirmation")
def dlq_purge(yes: bool) -> None:
    from .. import dlq as dl

    settings = ops_settings()
    deps = open_deps(settings, read_sources(settings))
    count = deps.redis.xlen(deps.keys.dead_stream)
    if not yes and not click.confirm(f"Delete all {count} dead letters?", default=False):
        click.echo("nothing deleted")
        return
    click.echo(f"{dl.purge(deps.redis, deps.keys)} dead letter(s) deleted")
