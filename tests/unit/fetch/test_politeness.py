"""Politeness without a network: reading Retry-After."""

from __future__ import annotations

import pytest

from worker.fetch.politeness import parse_retry_after


def test_retry_after_http_date() -> None:
    """Retry-After as an HTTP date is turned into seconds from now."""
    now = 1_700_000_000.0
    assert parse_retry_after("Tue, 14 Nov 2023 22:14:20 GMT", now) == pytest.approx(60, abs=1)
    assert parse_retry_after("30", now) == 30
    assert parse_retry_after("soon", now) is None
