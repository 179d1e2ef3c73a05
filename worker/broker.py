"""kombu's Redis transport, without one avoidable cost.

kombu builds a new `redis.Redis` client object for each ack and each event
it publishes (`Channel._create_client`, reached through `conn_or_acquire`).
Constructing one fills a ~200-entry callback table; in `bench/pipeline.py`
that was a quarter of all Redis-client CPU in both workers. A client object
holds no connection of its own (commands borrow one from the pool), so one
per channel and pool serves every caller, across threads too.
"""

from __future__ import annotations

from typing import Any

from kombu.transport import redis as kombu_redis


class Channel(kombu_redis.Channel):
    _shared_client: Any = None

    def _create_client(self, asynchronous: bool = False) -> Any:
        if asynchronous:
            return super()._create_client(asynchronous=True)
        client = self._shared_client
        if client is None or client.connection_pool is not self.pool:  # a new pool after a reconnect
            client = self._shared_client = super()._create_client()
        return client


class Transport(kombu_redis.Transport):
    Channel = Channel


def transport_for(broker_url: str) -> str | None:
    """The transport Celery should use for `broker_url`: ours for Redis, kombu's choice otherwise."""
    scheme = broker_url.split("://", 1)[0].lower()
    return "worker.broker:Transport" if scheme in ("redis", "rediss") else None
