"""`wire dedup replay` and `wire explain` against the private test Redis (CliRunner and a real subprocess)."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import redis
from click.testing import CliRunner

from tests.support.env import wire_env
from tests.support.paths import ROOT
from worker.dedup import Dedup, Doc
from worker.ops.cli import cli

BODY = "\n\n".join(
    f"Paragraph {p}: the harbour authority said {p * 3} ships waited outside the port on day {p} "
    f"while crews repaired crane number {p + 10}."
    for p in range(8)
)
OTHER = "\n\n".join(
    f"Section {p}: the orchestra rehearsed symphony {p} for {p + 4} hours in the old town hall "
    f"before tickets number {p * 50} went on sale."
    for p in range(8)
)


def _items(path: Path) -> Path:
    rows = [
        {
            "id": "a",
            "url": "https://a.example/harbour",
            "title": "Harbour",
            "body": BODY,
            "published": "2024-05-01T10:00:00Z",
        },
        {
            "id": "b",
            "url": "https://b.example/ports",
            "title": "Ports | B",
            "body": BODY + "\n\nReuters contributed to this report.",
            "published": "2024-05-01T11:00:00Z",
        },
        {
            "id": "c",
            "url": "https://c.example/music",
            "title": "Music",
            "body": OTHER,
            "published": "2024-05-01T12:00:00Z",
        },
        {
            "id": "d",
            "url": "https://a.example/harbour",
            "title": "Harbour",
            "body": BODY,
            "published": "2024-05-01T13:00:00Z",
        },
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def _replay_keys(r: redis.Redis) -> set[bytes]:
    return set(r.scan_iter(match="wire:replay:*"))


def _check_replay_output(lines: list[str]) -> None:
    out = [json.loads(x) for x in lines if x.strip()]
    assert [o["id"] for o in out] == ["a", "b", "c", "d"]
    assert all({"id", "event", "story_id", "similarity"} <= set(o) for o in out)
    assert [o["event"] for o in out] == ["new", "duplicate", "new", "duplicate"]
    assert out[0]["story_id"] == out[1]["story_id"] == out[3]["story_id"] != out[2]["story_id"]
    assert out[0]["similarity"] == 0.0 and out[1]["similarity"] > 0.9


def test_replay_prints_one_line_per_input_and_cleans_up(
    tmp_path: Path, redis_url: str, r: redis.Redis
) -> None:
    """`wire dedup replay` prints id/event/story_id/similarity per input and leaves no keys in Redis."""
    before = _replay_keys(r)
    items = _items(tmp_path / "items.jsonl")
    result = CliRunner().invoke(
        cli, ["dedup", "replay", str(items), "--redis-url", redis_url], catch_exceptions=False
    )
    assert result.exit_code == 0, result.output
    _check_replay_output(result.output.splitlines())
    assert _replay_keys(r) == before


def test_replay_works_under_the_key_prefix(tmp_path: Path, redis_url: str, r: redis.Redis, prefix: str) -> None:
    """Without --namespace, replay's keys are under `<WIRE_KEY_PREFIX>:replay:`, never a hard-coded `wire:`
    (every command Redis receives meanwhile is watched with MONITOR), and none is left afterwards."""
    items = _items(tmp_path / "items.jsonl")
    seen: list[str] = []
    watching = threading.Event()

    def watch() -> None:
        with redis.Redis.from_url(redis_url).monitor() as monitor:
            watching.set()
            for command in monitor.listen():
                if "replay-watch-done" in command["command"]:
                    return
                seen.append(command["command"])

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    assert watching.wait(10)
    result = CliRunner().invoke(cli, ["dedup", "replay", str(items), "--redis-url", redis_url],
                                env={"WIRE_KEY_PREFIX": prefix}, catch_exceptions=False)
    r.echo("replay-watch-done")
    watcher.join(10)
    assert result.exit_code == 0, result.output
    _check_replay_output(result.output.splitlines())
    assert any(f"{prefix}:replay:" in c for c in seen)
    assert not any("wire:replay:" in c for c in seen)
    assert list(r.scan_iter(match=f"{prefix}:*")) == []


def test_replay_as_a_subprocess(tmp_path: Path, redis_url: str, r: redis.Redis) -> None:
    """`python -m worker.ops.cli dedup replay FILE` works as a real process, with the URL from WIRE_REDIS_URL."""
    before = _replay_keys(r)
    items = _items(tmp_path / "items.jsonl")
    env = wire_env(redis_url=redis_url)
    proc = subprocess.run(
        [sys.executable, "-m", "worker.ops.cli", "dedup", "replay", str(items)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    _check_replay_output(proc.stdout.splitlines())
    assert _replay_keys(r) == before


def test_replay_with_a_named_namespace_keeps_it(
    tmp_path: Path, redis_url: str, r: redis.Redis, prefix: str
) -> None:
    """With --namespace the state stays under that namespace (for inspection) and nowhere else."""
    items = _items(tmp_path / "items.jsonl")
    ns = f"{prefix}:replay"
    result = CliRunner().invoke(
        cli,
        ["dedup", "replay", str(items), "--redis-url", redis_url, "--namespace", ns],
        catch_exceptions=False,
    )
    assert result.exit_code == 0
    keys = set(r.scan_iter(match=f"{prefix}:*"))
    assert keys and all(k.startswith(f"{ns}:".encode()) for k in keys)


def test_explain_shows_the_story_copies_and_rules(redis_url: str, r: redis.Redis, prefix: str) -> None:
    """`wire explain URL` names the story, each copy, its similarity and the rule; --json has the same data."""
    dd = Dedup(r, f"{prefix}:dedup")
    first = dd.submit(Doc("https://a.example/harbour", "Harbour", BODY), now=1000.0)
    dd.submit(
        Doc("https://b.example/ports", "Ports", BODY + "\n\nReuters contributed to this report."), now=2000.0
    )
    env = {"WIRE_KEY_PREFIX": prefix}
    result = CliRunner().invoke(
        cli, ["explain", "https://b.example/ports", "--redis-url", redis_url], env=env, catch_exceptions=False
    )
    assert result.exit_code == 0
    assert first.story_id in result.output
    assert "duplicate (near)" in result.output and "https://a.example/harbour" in result.output
    assert "no match" in result.output  # the first copy's rule, listed under the story
    doc = json.loads(
        CliRunner()
        .invoke(cli, ["explain", "https://b.example/ports", "--json", "--redis-url", redis_url], env=env)
        .output
    )
    assert [e["event"] for e in doc["decisions"]] == ["duplicate"]
    assert doc["decisions"][0]["matched_url"] == "https://a.example/harbour"
    assert doc["decisions"][0]["similarity"] > 0.9
    assert [e["url"] for e in doc["story"]] == ["https://a.example/harbour", "https://b.example/ports"]


def test_explain_unknown_url(redis_url: str, prefix: str) -> None:
    """An URL dedup never saw gets a plain message, not an error."""
    result = CliRunner().invoke(
        cli,
        ["explain", "https://nowhere.example/x", "--redis-url", redis_url],
        env={"WIRE_KEY_PREFIX": prefix},
    )
    assert result.exit_code == 0 and "no dedup decisions" in result.output


def test_replay_decides_the_documents_before_a_bad_line(r: redis.Redis, prefix: str) -> None:
    """Replay sends documents in chunks; a line that is not a document ends it with the error,
    after every document before it was decided and reported (in the same chunk or not)."""
    from worker.dedup.replay import replay

    good = [json.dumps({"id": str(i), "url": f"https://a.example/{i}", "body": BODY if i % 2 else OTHER})
            for i in range(5)]
    out: list[dict[str, object]] = []
    with pytest.raises(json.JSONDecodeError):
        for row in replay(Dedup(r, f"{prefix}:replay"), [*good, "{not json", good[0]], chunk=2):
            out.append(row)
    assert [row["id"] for row in out] == ["0", "1", "2", "3", "4"]
    assert [row["event"] for row in out] == ["new", "new", "duplicate", "duplicate", "duplicate"]
