"""Fixtures of the end-to-end tests: the loopback syndication sites and a cluster of wire processes."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from tests.support.cluster import Cluster
from tests.support.env import wire_env
from tests.support.loopback import SiteServer
from tests.support.sites import sources_yaml, syndication_sites
from worker.ops.redis_server import RedisProcess

_db = itertools.count(1)


@pytest.fixture
def site_server() -> Iterator[tuple[SiteServer, dict]]:
    server = SiteServer()
    yield server, syndication_sites(server)
    server.stop()


@pytest.fixture
def redis_db_url(redis_server: RedisProcess) -> str:
    """A Redis database of the throwaway server for this test alone: Celery's queues are not prefixed."""
    db = next(_db) % 16 or 1
    url = f"redis://127.0.0.1:{redis_server.port}/{db}"
    redis.Redis.from_url(url).flushdb()  # our own throwaway server: this DB belongs to this test
    return url


@pytest.fixture
def cluster_env(redis_db_url: str, prefix: str, tmp_path: Path, site_server) -> dict[str, str]:
    """The environment of the cluster's processes: the shipped settings, but for the loopback sites."""
    url = redis_db_url
    _, sites = site_server
    sources = tmp_path / "sources.yaml"
    sources.write_text(sources_yaml(sites).replace("ROUTE_STREAM", f"{prefix}:items:ap"))
    return wire_env(redis_url=url, key_prefix=prefix, sources=sources, allow_private_addresses="true",
                    log_format="json", data_dir=tmp_path / "data")


@pytest.fixture
def cluster(cluster_env: dict[str, str], tmp_path: Path) -> Iterator[Cluster]:
    c = Cluster(cluster_env, tmp_path)
    yield c
    c.stop()
