"""Fixtures for every test: a throwaway redis-server per session, a fresh key prefix per test.

The suite never talks to a Redis it did not start, so a developer's or CI's
Redis on 6379 is never touched.

Tests by kind, each kind in its folder (`make test-fast` runs the first):

- unit/: pure, no Redis, no HTTP, no processes (unit/conftest.py refuses a
  unit test that asks for Redis);
- integration/: real Redis, loopback HTTP servers, short-lived processes
  (a CLI command, promtool);
- e2e/: real wire processes (Celery workers, beat, `wire run`, `wire serve`);
- support/: helpers shared by the tests (the loopback sites, the
  environment of a wire process, polling); fixtures/: data.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
import redis

from worker.keys import Keys
from worker.ops.redis_server import RedisProcess, start_redis


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisProcess]:
    """A private redis-server on a free loopback port, stopped after the session."""
    server = start_redis(tmp_path_factory.mktemp("redis"), appendonly=False)
    yield server
    server.stop()


@pytest.fixture
def redis_url(redis_server: RedisProcess) -> str:
    return redis_server.url


@pytest.fixture
def r(redis_server: RedisProcess) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_server.url)
    yield client
    client.close()


@pytest.fixture
def prefix() -> str:
    """A key prefix no other test uses."""
    return f"t{uuid.uuid4().hex[:10]}"


@pytest.fixture
def keys(prefix: str) -> Keys:
    return Keys.for_prefix(prefix)
