"""worker/broker.py: Celery uses our Redis transport; taking a message records it as unacked in the same
atomic step (doorbell lists wake the consumers); its channels share one client object."""

from __future__ import annotations

import contextlib
import json
import socket
import time

import redis
from kombu import Queue

from worker.queue.app import create_app
from worker.queue.broker import MALFORMED_KEY, Channel, Transport
from worker.settings import Settings, SourcesConfig


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


def _app(redis_url: str):
    return create_app(Settings.from_env({"WIRE_REDIS_URL": redis_url}), SourcesConfig(path="none.yaml", sources=()))


def _publish(conn, queue: str, body: dict) -> None:
    conn.Producer().publish(body, routing_key=queue, exchange="", serializer="json")


def test_publish_rings_a_bell_and_a_take_records_the_message_as_unacked(redis_url: str, prefix: str, r) -> None:
    """The message and its bell are pushed together; taking it pops both and writes kombu's unacked
    record (message, exchange, routing key) and index entry in the same step; the ack removes them."""
    queue = f"{prefix}-q"
    with _app(redis_url).connection_for_write() as conn:
        channel = conn.default_channel
        _publish(conn, queue, {"n": 1})
        assert r.llen(queue) == 1 and r.llen(channel.bell(queue)) == 1
        before = time.time()
        message = channel.basic_get(queue)
        assert message is not None and message.payload == {"n": 1}
        tag = message.delivery_tag
        assert r.llen(queue) == 0 and not r.exists(channel.bell(queue))
        record, exchange, routing_key = json.loads(r.hget("unacked", tag))
        assert record == message._raw and (exchange, routing_key) == ("", queue)
        assert before - 1 <= r.zscore("unacked_index", tag) <= time.time() + 1
        message.ack()
        assert not r.hexists("unacked", tag) and r.zscore("unacked_index", tag) is None


def test_a_no_ack_get_is_not_recorded(redis_url: str, prefix: str, r) -> None:
    queue = f"{prefix}-q"
    with _app(redis_url).connection_for_write() as conn:
        _publish(conn, queue, {"n": 2})
        message = conn.default_channel.basic_get(queue, no_ack=True)
        assert message is not None and message.payload == {"n": 2}
        assert not r.hexists("unacked", message.delivery_tag)


def test_messages_whose_bells_were_lost_are_still_consumed(redis_url: str, prefix: str, r) -> None:
    """Bells lost with a killed worker (or a producer that never rang): a consumer whose BRPOP times out
    takes from its queues anyway, and that take puts the missing bells back, so the rest follow at once."""
    queue = f"{prefix}-q"
    got: list[int] = []
    with _app(redis_url).connection_for_write() as conn:
        channel = conn.default_channel
        for n in range(3):
            _publish(conn, queue, {"n": n})
        r.delete(channel.bell(queue))
        with conn.Consumer(Queue(queue, exchange="", routing_key=queue),
                           callbacks=[lambda body, message: (got.append(body["n"]), message.ack())]):
            deadline = time.monotonic() + 10
            while len(got) < 3 and time.monotonic() < deadline:
                with contextlib.suppress(TimeoutError, socket.timeout):
                    conn.drain_events(timeout=1)
    assert sorted(got) == [0, 1, 2]
    assert r.llen(queue) == 0 and not r.exists(channel.bell(queue))


def test_spare_bells_are_dropped(redis_url: str, prefix: str, r) -> None:
    queue = f"{prefix}-q"
    with _app(redis_url).connection_for_write() as conn:
        channel = conn.default_channel
        _publish(conn, queue, {"n": 1})
        _publish(conn, queue, {"n": 2})
        r.lpush(channel.bell(queue), 1, 1, 1)  # 5 bells for 2 messages
        assert channel.basic_get(queue) is not None
        assert r.llen(channel.bell(queue)) == 1  # one per message still waiting
        assert channel.basic_get(queue) is not None
        assert not r.exists(channel.bell(queue))


def test_a_payload_that_is_not_a_kombu_message_is_set_aside(redis_url: str, prefix: str, r) -> None:
    queue = f"{prefix}-q"
    with _app(redis_url).connection_for_write() as conn:
        channel = conn.default_channel
        r.lpush(queue, b"not json at all")
        r.lpush(channel.bell(queue), 1)
        assert channel.basic_get(queue) is None
        assert b"not json at all" in r.lrange(MALFORMED_KEY, 0, -1)
        assert r.llen(queue) == 0


def test_requeued_and_restored_messages_ring_their_bell(redis_url: str, prefix: str, r) -> None:
    """A rejected (requeue) message and one restored after the visibility timeout go back on the queue
    with a bell, marked redelivered, and leave unacked."""
    queue = f"{prefix}-q"
    with _app(redis_url).connection_for_write() as conn:
        channel = conn.default_channel
        _publish(conn, queue, {"n": 1})
        first = channel.basic_get(queue)
        first.reject(requeue=True)
        assert r.llen(queue) == 1 and r.llen(channel.bell(queue)) == 1
        assert not r.hexists("unacked", first.delivery_tag)
        again = channel.basic_get(queue)
        assert again.payload == {"n": 1} and again.delivery_info["redelivered"]
        # its worker died: the index says it was taken long ago, and a restore sweep puts it back
        r.zadd("unacked_index", {again.delivery_tag: time.time() - 10 * channel.visibility_timeout})
        channel.qos.restore_visible(num=None, interval=1)
        assert r.llen(queue) == 1 and r.llen(channel.bell(queue)) == 1
        assert not r.hexists("unacked", again.delivery_tag)
        assert channel.basic_get(queue).payload == {"n": 1}


def test_a_channel_closed_under_its_delivered_messages_still_restores_them(redis_url: str, prefix: str, r) -> None:
    """The crash seen when Redis restarted while a long task ran: Celery's consumer closes its connection,
    the channel restores the messages it delivered and kombu tries to build a new pool from a transport
    whose connection info is gone (AttributeError: 'NoneType' object has no attribute 'hostname', an
    "Unrecoverable error" that stopped the worker). The channel's existing client is used instead: the
    delivered message goes back to its queue, and closing raises nothing."""
    queue = f"{prefix}-q"
    with _app(redis_url).connection_for_write() as conn:
        channel = conn.default_channel
        _publish(conn, queue, {"n": 1})
        message = channel.basic_get(queue)
        assert message is not None and r.hlen("unacked") == 1
        # what the consumer's failed connection looks like by then: pools dropped, no connection info
        transport_client, conn.transport.client = conn.transport.client, None
        channel._disconnect_pools()
        try:
            channel.close()
        finally:
            conn.transport.client = transport_client
        assert r.llen(queue) == 1 and r.hlen("unacked") == 0
        assert r.llen(channel.bell(queue)) == 1  # the restored message rang its bell


def test_a_channel_closed_before_it_had_a_client_raises_a_connection_error(redis_url: str) -> None:
    """Without a client to fall back on, the closed channel answers with a connection error, which kombu's
    connection close ignores (the messages stay in unacked and come back after the visibility timeout)."""
    with _app(redis_url).connection_for_write() as conn:
        channel = conn.default_channel
        channel._shared_client = None
        transport_client, conn.transport.client = conn.transport.client, None
        channel._disconnect_pools()
        try:
            with contextlib.suppress(*conn.connection_errors):
                channel._create_client()
                raise AssertionError("expected a connection error")
        finally:
            conn.transport.client = transport_client


def test_batch_messages_carry_a_short_argsrepr_and_every_item(redis_server, prefix: str) -> None:
    """A batch's message shows Flower and task events a summary (count, first URL), not a repr Celery
    builds of the whole batch on every send; the body still carries every item."""
    import base64

    from worker.queue import batches

    url = f"redis://127.0.0.1:{redis_server.port}/14"
    client = redis.Redis.from_url(url)
    client.flushdb()  # our own throwaway server: this DB belongs to this test
    try:
        create_app(Settings.from_env({"WIRE_REDIS_URL": url, "WIRE_KEY_PREFIX": prefix}),
                   SourcesConfig(path="none.yaml", sources=()))
        refs = [{"url": f"https://a.example/{i}", "source": "a", "page_key": f"{prefix}:page:{i}"} for i in range(8)]
        batches.enqueue_process(refs)
        batches.enqueue_fetch([{"url": "https://a.example/x", "source": "a"}], attempt=2)
        (process_raw,) = client.lrange("process", 0, -1)
        (fetch_raw,) = client.lrange("fetch", 0, -1)
        process_msg, fetch_msg = json.loads(process_raw), json.loads(fetch_raw)
        assert process_msg["headers"]["argsrepr"] == "[8 pages: https://a.example/0 ...]"
        assert process_msg["headers"]["kwargsrepr"] == "{}"
        args, kwargs, _ = json.loads(base64.b64decode(process_msg["body"]))
        assert args == [refs] and kwargs == {}
        assert fetch_msg["headers"]["argsrepr"] == "[1 URL: https://a.example/x]"
        assert fetch_msg["headers"]["kwargsrepr"] == "{'force': False, 'parks': 0, 'attempt': 2}"
    finally:
        client.flushdb()
        client.close()


def test_the_malformed_list_is_capped_counted_and_expires(redis_url: str, prefix: str, r) -> None:
    """Once `unacked_malformed` holds BROKER_MALFORMED_MAX payloads, each new one pushes the oldest out, in
    the same script: the list keeps the newest, has a TTL, and the drops are counted in wire's metrics
    and logged (on main it grew without bound and never expired)."""
    from structlog.testing import capture_logs

    from worker.keys import BROKER_MALFORMED_MAX, BROKER_MALFORMED_TTL, Keys
    from worker.metrics import counter_sum

    queue = f"{prefix}-q"
    r.delete(MALFORMED_KEY)
    r.lpush(MALFORMED_KEY, *[f"old {i}" for i in range(BROKER_MALFORMED_MAX)])
    settings = Settings.from_env({"WIRE_REDIS_URL": redis_url, "WIRE_KEY_PREFIX": prefix})
    app = create_app(settings, SourcesConfig(path="none.yaml", sources=()))
    with app.connection_for_write() as conn, capture_logs() as logs:
        channel = conn.default_channel
        for i in range(3):
            r.lpush(queue, f"not a message {i}")
            r.lpush(channel.bell(queue), 1)
            assert channel.basic_get(queue) is None
    kept = r.lrange(MALFORMED_KEY, 0, -1)
    assert len(kept) == BROKER_MALFORMED_MAX
    assert kept[:3] == [b"not a message 2", b"not a message 1", b"not a message 0"]
    assert b"old 0" not in kept and b"old 3" in kept
    assert 0 < r.ttl(MALFORMED_KEY) <= BROKER_MALFORMED_TTL
    assert counter_sum(r, Keys.for_prefix(prefix).metrics(), "wire_broker_malformed_dropped_total") == 3
    assert [e["dropped"] for e in logs if "set aside" in e["event"]] == [1, 1, 1]
    r.delete(MALFORMED_KEY)
