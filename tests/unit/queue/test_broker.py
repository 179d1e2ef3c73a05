"""Which transport Celery gets (no broker needed)."""

from __future__ import annotations

from worker.queue.broker import transport_for


def test_transport_for_redis_urls_only() -> None:
    assert transport_for("redis://127.0.0.1:6379/0") == "worker.queue.broker:Transport"
    assert transport_for("rediss://cache.example:6380/0") == "worker.queue.broker:Transport"
    assert transport_for("amqp://guest@localhost//") is None
