"""`wire extract`: run extraction on files or URLs, for writing a source's rules."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from ...errors import WorkerError
from ...settings import Settings
from .common import load_settings, read_sources


@click.command()
@click.argument("targets", nargs=-1, required=True)
@click.option("--json", "as_json", is_flag=True, help="one JSON line per page")
@click.option("--source", "source_name", default=None, help="apply this source's rules from sources.yaml")
def extract(targets: tuple[str, ...], as_json: bool, source_name: str | None) -> None:
    """Run extraction on files or URLs and print the result (for writing site rules)."""
    from ...extract import extract as run_extract
    from ...models import Rules

    settings = load_settings()
    rules = Rules()
    if source_name:
        found = read_sources(settings).get(source_name)
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
        from ...fetch.http import Limits, get

        resp = get(target, user_agent=settings.user_agent, limits=Limits.from_settings(settings))
        return resp.content, resp.final_url, resp.charset
    return Path(target).read_bytes(), None, None
