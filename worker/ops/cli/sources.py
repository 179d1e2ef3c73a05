"""`wire sources check`: validate a sources file."""

from __future__ import annotations

import click

from .common import load_settings, read_sources


@click.group()
def sources() -> None:
    """Work with config/sources.yaml."""


@sources.command("check")
@click.argument("path", required=False)
def sources_check(path: str | None) -> None:
    """Validate a sources file (default: $WIRE_SOURCES or config/sources.yaml)."""
    settings = load_settings()
    config = read_sources(settings, path)
    click.echo(f"{config.path}: {len(config.sources)} sources, {len(config.routes)} routes, OK")
