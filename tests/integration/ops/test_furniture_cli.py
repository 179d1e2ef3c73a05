"""`wire furniture show HOST` and `wire furniture reset HOST` against the private test Redis (CliRunner)."""

from __future__ import annotations

import json
import time

import pytest
import redis
from click.testing import CliRunner

from worker.extract.furniture import KEY_BYTES, Template, block_key
from worker.keys import Keys
from worker.ops.cli import cli
from worker.pipeline.furniture import FurnitureStore


def _key(n: int) -> bytes:
    return n.to_bytes(KEY_BYTES, "big")


@pytest.fixture
def store(r: redis.Redis, prefix: str) -> FurnitureStore:
    return FurnitureStore(r, Keys.for_prefix(prefix))


def test_furniture_show_and_reset(store: FurnitureStore, redis_url: str, prefix: str) -> None:
    """`wire furniture show HOST` lists the learned lines with their counts (`--all` the ones still counting,
    `--json` the same as data); `wire furniture reset HOST` forgets them."""
    nav = block_key("Home | News | Sports")
    assert nav is not None
    for i in range(3):
        pipe = store.r.pipeline(transaction=False)
        store.record(pipe, "courier.example", f"{i + 1:08x}{0:08x}",
                     [(nav, b"Home | News | Sports"), (_key(100 + i), b"A story's own line")], time.time())
        store.execute(pipe)
    env = {"WIRE_KEY_PREFIX": prefix}
    run = CliRunner()
    out = run.invoke(cli, ["furniture", "show", "courier.example", "--redis-url", redis_url], env=env).output
    assert "3 pages counted, 4 lines kept" in out and "Home | News | Sports" in out and "own line" not in out
    out = run.invoke(cli, ["furniture", "show", "Courier.Example", "--all", "--redis-url", redis_url], env=env).output
    assert "own line" in out
    doc = json.loads(run.invoke(cli, ["furniture", "show", "courier.example", "--json", "--redis-url", redis_url],
                                env=env).output)
    assert doc["pages"] == 3 and [row["text"] for row in doc["rows"]] == ["Home | News | Sports"]
    assert doc["rows"][0]["verdict"] == "furniture unless prose" and doc["bytes"] > 0
    out = run.invoke(cli, ["furniture", "reset", "courier.example", "--redis-url", redis_url], env=env).output
    assert "forgotten" in out
    assert store.show("courier.example") == Template("courier.example")
    out = run.invoke(cli, ["furniture", "show", "courier.example", "--redis-url", redis_url], env=env).output
    assert "nothing learned" in out
