"""`wire dedup replay` and `wire explain`.

`wire explain` reads a URL's trail (worker/trail.py) and its dedup decisions.

Replay never touches production state: it runs under a fresh random
namespace (``<WIRE_KEY_PREFIX>:replay:<hex>``) unless one is given, and deletes that
namespace afterwards. Without --redis-url or WIRE_REDIS_URL it starts a
private throwaway redis-server.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import click
import redis

from ... import trail
from ...dedup import Dedup
from ...dedup.replay import replay as run_replay
from ...keys import DECISION_LOG_MAX, TRAIL_MAX_EVENTS, Keys
from ..redis_server import start_redis
from .common import ops_settings


def _prefix() -> str:
    return os.environ.get("WIRE_KEY_PREFIX") or "wire"


@contextlib.contextmanager
def _redis(url: str | None) -> Iterator[redis.Redis]:
    if url:
        client = redis.Redis.from_url(url)
        try:
            yield client
        finally:
            client.close()
        return
    with tempfile.TemporaryDirectory(prefix="wire-replay-") as tmp:
        server = start_redis(Path(tmp), appendonly=False)
        client = redis.Redis.from_url(server.url)
        try:
            yield client
        finally:
            client.close()
            server.stop()


@click.group()
def dedup() -> None:
    """Deduplication tools."""


@dedup.command("replay")
@click.argument("file", type=click.File("r", encoding="utf-8"))
@click.option(
    "--namespace", "namespace", default=None, help="Key namespace (default: a fresh one, deleted afterwards)."
)
@click.option(
    "--redis-url", default=None, help="Redis URL (default: $WIRE_REDIS_URL, else a private throwaway server)."
)
def replay_cmd(file: IO[str], namespace: str | None, redis_url: str | None) -> None:
    """Run FILE.jsonl ({"id","url","title","body","published"} per line) through dedup, in order."""
    url = redis_url or os.environ.get("WIRE_REDIS_URL") or None
    ns = namespace or Keys.for_prefix(_prefix()).replay_ns(secrets.token_hex(6))
    with _redis(url) as client:
        dd = Dedup(client, ns)
        try:
            for result in run_replay(dd, file):
                click.echo(json.dumps(result, ensure_ascii=False))
        finally:
            if namespace is None:
                dd.store.delete_namespace()


def _format(e: dict[str, object]) -> str:
    if e.get("event") == "dropped":
        return f"... {e.get('dropped')} earlier decision(s) dropped: the log keeps the newest {DECISION_LOG_MAX}"
    kind = f" ({e['kind']})" if e.get("kind") else ""
    match = f" ~ {e['matched_url']}" if e.get("matched_url") else ""
    return (
        f"{trail.when(e.get('time'))}  {e.get('event')}{kind}  story {e.get('story_id')} v{e.get('version')}  "
        f"sim {e.get('similarity')}  rule: {e.get('rule')}  {e.get('url')}{match}"
    )


def explain_doc(client: redis.Redis, keys: Keys, url: str) -> dict[str, Any]:
    """Everything wire knows of `url` (as fetched, canonical or after redirects): its trail, the dedup
    decisions about it and its story's versions and copies (`wire explain --json`, the console)."""
    found = trail.read(client, keys, url)
    # the dedup decisions are keyed by the URL the page named canonical; the trail knows it
    named = [str(e["canonical"]) for e in reversed(found.events) if e.get("canonical")]
    dd = Dedup(client, keys.dedup_ns())
    decisions: list[dict[str, Any]] = []
    story: list[dict[str, Any]] = []
    for candidate in dict.fromkeys([*named, *([found.url] if found.url else []), *trail.spellings(url)]):
        decisions, story = dd.explain(candidate), dd.history(candidate)
        if story:
            break
    return {"url": url, "trail_url": found.url, "trail": found.events, "decisions": decisions, "story": story}


@click.command("explain")
@click.argument("url")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of readable lines.")
@click.option("--redis-url", default=None,
              help="Redis URL (default: $WIRE_REDIS_URL, else the wire run of this folder).")
def explain(url: str, as_json: bool, redis_url: str | None) -> None:
    """The whole path of URL: discovered, each fetch, its outcome, and the dedup decisions about it.

    URL may be given as fetched, in canonical form or as it was after redirects.
    """
    settings = ops_settings(redis_url)
    assert settings.redis_url is not None  # ops_settings found a Redis, or stopped the command
    client = redis.Redis.from_url(settings.redis_url)
    try:
        doc = explain_doc(client, Keys.for_prefix(settings.key_prefix), url)
    finally:
        client.close()
    if as_json:
        click.echo(json.dumps(doc, ensure_ascii=False, indent=1))
        return
    if doc["trail"]:
        click.echo(f"path of {doc['trail_url']} (its newest {TRAIL_MAX_EVENTS} events):")
        for ev in doc["trail"]:
            click.echo(f"  {trail.when(ev.get('t'))}  {trail.describe(ev)}")
    else:
        click.echo(f"no path recorded for {url} (within the dedup window)")
    story = doc["story"]
    if not story:
        click.echo(f"no dedup decisions recorded for {url} (within the window)")
        return
    click.echo(f"decisions for {doc['decisions'][0]['url'] if doc['decisions'] else url}:")
    for e in doc["decisions"]:
        click.echo("  " + _format(e))
        for line in e.get("furniture") or ():
            click.echo(f"      dropped as site furniture: {line}")
    click.echo(f"story {story[-1].get('story_id')}: versions and copies")
    for e in story:
        click.echo("  " + _format(e))
