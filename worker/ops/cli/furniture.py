"""`wire furniture show HOST` and `wire furniture reset HOST`: a host's learned furniture."""

from __future__ import annotations

import json
import time

import click
import redis

from ...extract.furniture import BlockStats, Template
from ...keys import Keys
from ...pipeline.furniture import FurnitureStore
from .common import ops_settings


def _store(redis_url: str | None) -> FurnitureStore:
    settings = ops_settings(redis_url)
    assert settings.redis_url is not None  # ops_settings found a Redis, or stopped the command
    return FurnitureStore(redis.Redis.from_url(settings.redis_url), Keys.for_prefix(settings.key_prefix))


def _verdict(stats: BlockStats, pages: int) -> str:
    if stats.learned(pages, prose=True):
        return "furniture"
    if stats.learned(pages):
        return "furniture unless prose"
    return "counting"


def _row(key: bytes, stats: BlockStats, pages: int) -> dict[str, object]:
    return {"key": key.hex(), "verdict": _verdict(stats, pages), "stories": stats.stories, "pages": stats.hits,
            "share": round(stats.share(pages), 3), "last_seen": stats.minute * 60, "text": stats.text}


@click.group()
def furniture() -> None:
    """A host's learned furniture: the lines dropped from its pages because they recur under different
    stories."""


@furniture.command("show")
@click.argument("host")
@click.option("--all", "show_all", is_flag=True, help="Also the lines still being counted.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.option("--redis-url", default=None,
              help="Redis URL (default: $WIRE_REDIS_URL, else the wire run of this folder).")
def show(host: str, show_all: bool, as_json: bool, redis_url: str | None) -> None:
    """What wire learned of HOST (a host name, as in the page URLs): its lines, their counts and verdicts."""
    store = _store(redis_url)
    host = host.lower()
    try:
        template: Template = store.show(host)
        size = store.size(host)
    finally:
        store.r.close()
    rows = sorted((_row(k, s, template.pages) for k, s in template.blocks.items()),
                  key=lambda r: (r["verdict"] == "counting", -int(str(r["stories"])), str(r["text"])))
    if not show_all:
        rows = [r for r in rows if r["verdict"] != "counting"]
    if as_json:
        click.echo(json.dumps({"host": host, "pages": template.pages, "lines": len(template.blocks),
                               "bytes": size, "rows": rows}, ensure_ascii=False, indent=1))
        return
    if not template.pages:
        click.echo(f"nothing learned of {host} (no page counted, or reset)")
        return
    click.echo(f"{host}: {template.pages} pages counted, {len(template.blocks)} lines kept, {size} bytes")
    for r in rows:
        seen = time.strftime("%Y-%m-%d %H:%M", time.gmtime(int(str(r["last_seen"]))))
        click.echo(f"  {r['verdict']:<22} stories {r['stories']:>3}  pages {r['pages']:>5}  share {r['share']:.2f}"
                   f"  last {seen}  {r['text']}")


@furniture.command("reset")
@click.argument("host")
@click.option("--redis-url", default=None,
              help="Redis URL (default: $WIRE_REDIS_URL, else the wire run of this folder).")
def reset(host: str, redis_url: str | None) -> None:
    """Forget what was learned of HOST: its pages go through the generic path until it is learned again."""
    store = _store(redis_url)
    try:
        gone = store.reset(host.lower())
    finally:
        store.r.close()
    click.echo(f"{host}: learned furniture forgotten" if gone else f"{host}: nothing was learned")
