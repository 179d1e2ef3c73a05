"""worker/broker.py: Celery uses our Redis transport, and its channels share one client object."""

from __future__ import annotations

import redis

from worker.broker import Channel, Transport, transport_for
from worker.celery_app import create_app
from worker.settings import Settings, SourcesConfig


def test_transport_for_redis_urls_only() -> None:
    assert transport_for("redis://127.0.0.1:6379/0") == "worker.broker:Transport"
    assert transport_for("rediss://cache.example:6380/0") == "worker.broker:Transport"
    assert transport_for("amqp://guest@localhost//") is None


def test_channel_shares_one_client_per_pool(redis_url: str) -> None:
    """Acks and events get the same client object (kombu would build one per call), and it works."""
    app = create_app(Settings.from_env({"WIRE_REDIS_URL": redis_url}), SourcesConfig(path="none.yaml", sources=()))
    with app.connection_for_write() as conn:
        assert isinstance(conn.transport, Transport)
        channel = conn.default_channel
        assert isinstance(channel, Channel)
        with channel.conn_or_acquire() as first, channel.conn_or_acquire() as second:
            assert first is second
            assert isinstance(first, redis.Redis) and first.ping()
        assert channel._create_client(asynchronous=True) is not first  # the event loop's own client
