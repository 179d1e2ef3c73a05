"""The console's per-source activity counts, computed without Redis."""

from __future__ import annotations

from worker.console import activity


def test_activity_delta_treats_a_drop_as_a_reset() -> None:
    """A counter lower than its snapshot (metrics hash reset) counts from zero."""
    now = {"s": {"fetched": 4.0, "published": 9.0, "duplicates": 0.0, "failures": 0.0}}
    then = {"s": {"fetched": 10.0, "published": 2.0, "duplicates": 0.0, "failures": 0.0}}
    assert activity.delta(now, then)["s"] == {"fetched": 4, "published": 7, "duplicates": 0, "failures": 0}
