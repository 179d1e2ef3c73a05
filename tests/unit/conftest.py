"""Unit tests are pure: one that asks for Redis is refused (it belongs in tests/integration)."""

from __future__ import annotations

import pytest

NOT_HERE = {"redis_server", "redis_url", "r"}


@pytest.fixture(autouse=True)
def _pure(request: pytest.FixtureRequest) -> None:
    wanted = NOT_HERE & set(request.fixturenames)
    if wanted:
        pytest.fail(f"{request.node.nodeid} uses {sorted(wanted)}: a unit test may not use Redis", pytrace=False)
