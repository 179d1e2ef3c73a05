"""`wire reingest`: fetch URLs, a source or everything again."""

from __future__ import annotations

import click

from ...errors import ReingestError
from .common import celery_app, enqueuer, open_deps, ops_settings, read_sources, rediscoverer


@click.command("reingest")
@click.option("--url", "urls", multiple=True, help="a URL to fetch again (repeatable)")
@click.option("--source", default=None, help="a configured source name")
@click.option("--since", default=None, help="with --source/--all: only URLs discovered in this window, e.g. 6h")
@click.option("--all", "all_", is_flag=True, help="every configured source")
@click.option("--force", is_flag=True, help="bypass seen-URL and conditional-GET state")
def reingest_cmd(urls: tuple[str, ...], source: str | None, since: str | None, all_: bool, force: bool) -> None:
    """Enqueue re-ingestion of URLs, a source (optionally a time window) or everything."""
    from .. import reingest

    settings = ops_settings()
    sources = read_sources(settings)
    deps = open_deps(settings, sources)
    app = celery_app(settings, sources)
    req = reingest.Request(urls=urls, source=source, since=since, all=all_, force=force)
    try:
        result = reingest.run(req, deps, enqueuer(app), rediscoverer(app))
    except ReingestError as exc:
        raise click.ClickException(str(exc)) from None
    for url in result["enqueued"]:
        click.echo(f"enqueued {url}")
    for name in result["rediscovered"]:
        click.echo(f"discovery started for {name}")
    click.echo(f"{result['count']} URL(s) enqueued{' (force)' if force else ''}")
