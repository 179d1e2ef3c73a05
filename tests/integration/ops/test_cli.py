"""Operator commands against real Redis: status, reingest, dlq, extract."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import redis
from click.testing import CliRunner

from tests.support.env import wire_env
from tests.support.paths import ROOT
from worker.keys import Keys
from worker.ops.cli import cli
from worker.publish import dead_letter


@pytest.fixture
def env(tmp_path: Path, redis_url: str, prefix: str) -> dict[str, str]:
    sources = tmp_path / "sources.yaml"
    sources.write_text("sources:\n- name: example\n  feeds: [https://news.example.com/feed]\n"
                       "- name: other\n  feeds: [https://other.example.org/feed]\n")
    return {"WIRE_REDIS_URL": redis_url, "WIRE_KEY_PREFIX": prefix, "WIRE_SOURCES": str(sources),
            "WIRE_ALLOW_PRIVATE_ADDRESSES": "true"}


def invoke(env: dict[str, str], *args: str, input: str | None = None):  # noqa: A002
    return CliRunner().invoke(cli, list(args), env=env, input=input, catch_exceptions=False)


def test_status_table_and_json(env: dict[str, str]) -> None:
    """`wire status` prints queues, streams and sources; `--json` prints the documented document."""
    result = invoke(env, "status")
    assert result.exit_code == 0
    assert "QUEUE" in result.output and "example" in result.output and "STALE" in result.output
    doc = json.loads(invoke(env, "status", "--json").output)
    assert doc["schema"] == 1 and set(doc["queues"]) == {"discover", "fetch", "process"}
    assert [s["name"] for s in doc["sources"]] == ["example", "other"]


def test_status_fails_when_redis_is_unreachable(env: dict[str, str]) -> None:
    """`wire status` exits non-zero when Redis does not answer."""
    import subprocess
    import sys

    from worker.ops.redis_server import free_port

    bad = {**env, "WIRE_REDIS_URL": f"redis://127.0.0.1:{free_port()}/0"}
    proc = subprocess.run([sys.executable, "-m", "worker.ops.cli", "status"], env=wire_env(**bad),
                          capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert proc.returncode != 0 and "redis" in proc.stderr.lower()


def test_reingest_urls_enqueue_fetch_tasks(env: dict[str, str], r: redis.Redis, redis_url: str) -> None:
    """`wire reingest --url` canonicalises, maps the URL to its source and enqueues a fetch."""
    before = r.llen("fetch")
    result = invoke(env, "reingest", "--url", "https://news.example.com/a?utm_source=x#top", "--force")
    assert result.exit_code == 0, result.output
    assert "enqueued https://news.example.com/a" in result.output
    assert r.llen("fetch") == before + 1
    message = json.loads(r.lpop("fetch"))
    assert message["headers"]["task"] == "wire.fetch"


def test_reingest_unknown_source_lists_known_ones(env: dict[str, str]) -> None:
    """An unknown source is refused with the list of known sources."""
    result = CliRunner().invoke(cli, ["reingest", "--source", "nope"], env=env)
    assert result.exit_code != 0
    assert "known sources: example, other" in result.output


def test_reingest_source_window_uses_discovery_log(env: dict[str, str], r: redis.Redis, prefix: str) -> None:
    """`--source NAME --since 1h` re-enqueues only URLs discovered in that window."""
    import time

    keys = Keys.for_prefix(prefix)
    r.zadd(keys.source_urls("example"), {"https://news.example.com/new": time.time() - 60,
                                         "https://news.example.com/old": time.time() - 7200})
    result = invoke(env, "reingest", "--source", "example", "--since", "1h")
    assert "enqueued https://news.example.com/new" in result.output
    assert "old" not in result.output
    r.delete("fetch", "discover")


def test_dlq_list_show_replay_purge(env: dict[str, str], r: redis.Redis, prefix: str) -> None:
    """Dead letters can be listed, shown, replayed at their stage, and purged with confirmation."""
    keys = Keys.for_prefix(prefix)
    ids = [dead_letter(r, keys, stage="fetch", reason="http_500", error="HTTP 500", url=f"https://news.example.com/{i}",
                       source="example", payload={"url": f"https://news.example.com/{i}", "source": "example"},
                       attempts=3) for i in range(3)]
    listing = invoke(env, "dlq", "list").output
    assert all(i in listing for i in ids) and "http_500" in listing
    shown = json.loads(invoke(env, "dlq", "show", ids[0]).output)
    assert shown["url"] == "https://news.example.com/0" and shown["stage"] == "fetch"
    before = r.llen("fetch")
    assert "1 dead letter(s) replayed" in invoke(env, "dlq", "replay", ids[0]).output
    assert r.llen("fetch") == before + 1 and r.xlen(keys.dead_stream) == 2
    assert "nothing deleted" in invoke(env, "dlq", "purge", input="n\n").output
    assert r.xlen(keys.dead_stream) == 2
    assert "2 dead letter(s) deleted" in invoke(env, "dlq", "purge", "--yes").output
    assert r.xlen(keys.dead_stream) == 0
    r.delete("fetch")


def test_extract_command_prints_json(env: dict[str, str], tmp_path: Path) -> None:
    """`wire extract FILE --json` prints one JSON line with the Article fields."""
    from tests.support.sites import STORIES, wordpress_page

    page = tmp_path / "page.html"
    page.write_text(wordpress_page(STORIES["taliban-consulates"], "https://alpha.example"))
    out = invoke(env, "extract", str(page), "--json").output
    doc = json.loads(out)
    assert doc["title"] == "Taliban wins close consulates; Tajikistan reinforces border"
    assert doc["agency"] == "AP" and doc["dateline"] == "KABUL, Afghanistan"
    assert "Leave a Reply" not in doc["body"]
