"""Recovery by liveness, at the broker (worker/broker.py, worker/unacked.py, worker/liveness.py) against a
real Redis: every unacked record names its owner; the reaper restores a dead owner's messages exactly once
whoever reaps, and never a live owner's however long it holds them; a frozen owner that comes back cannot
ack or requeue what another consumer now holds; the visibility timeout stays the last resort."""

from __future__ import annotations

import json
import os
import threading
import time
import uuid
from collections.abc import Iterator

import pytest
import redis

from worker.keys import CONSUMER_TTL, Keys
from worker.metrics import counter_sum
from worker.ops import status
from worker.queue import liveness
from worker.queue.app import create_app
from worker.queue.broker import OWNER_KEY, Channel
from worker.queue.liveness import Heartbeat, Streak
from worker.settings import Settings, SourcesConfig

DB = 10  # a database of the session's Redis of our own: the reaper reads every record in it


@pytest.fixture
def broker(redis_server, prefix: str) -> Iterator[tuple[str, redis.Redis]]:
    url = f"redis://127.0.0.1:{redis_server.port}/{DB}"
    client = redis.Redis.from_url(url)
    client.flushdb()
    yield url, client
    client.flushdb()
    client.close()


class Consumers:
    """Channels of one connection, each with a heartbeat of its own (a consumer each, in one process)."""

    def __init__(self, url: str, client: redis.Redis, prefix: str) -> None:
        self.settings = Settings.from_env({"WIRE_REDIS_URL": url, "WIRE_KEY_PREFIX": prefix})
        self.app = create_app(self.settings, SourcesConfig(path="none.yaml", sources=()))
        self.conn = self.app.connection_for_write()
        self.client, self.keys = client, Keys.for_prefix(prefix)
        self.beats: list[Heartbeat] = []

    def consumer(self, name: str, *, settle: float = 0.0, client: redis.Redis | None = None) -> Channel:
        channel = self.conn.channel()
        beat = Heartbeat(client or self.client, self.keys, identity=f"{name}:{uuid.uuid4().hex[:6]}", settle=settle)
        self.beats.append(beat.start())
        channel._heartbeat = beat
        return channel

    def publish(self, queue: str, n: int) -> None:
        for i in range(n):
            self.conn.Producer().publish({"n": i}, routing_key=queue, exchange="", serializer="json",
                                         headers={"task": "wire.test", "id": f"task-{i}"})

    def close(self) -> None:
        for beat in self.beats:
            beat.stop()
        self.conn.release()


@pytest.fixture
def consumers(broker, prefix: str) -> Iterator[Consumers]:
    url, client = broker
    c = Consumers(url, client, prefix)
    yield c
    c.close()


def die(channel: Channel) -> None:
    """What a SIGKILL leaves: the heartbeat stops and its key is gone (here at once, not after its TTL)."""
    beat = channel._heartbeat
    assert beat is not None
    beat.stop(forget=True)


def recovered(c: Consumers, queue: str, reason: str) -> float:
    return counter_sum(c.client, c.keys.metrics(), "wire_tasks_recovered_total", queue=queue, reason=reason)


def test_a_take_names_its_live_owner_and_the_ack_removes_record_and_owner(consumers: Consumers, prefix: str) -> None:
    """The take writes the owner (the taker's heartbeat key, alive with a TTL of 15 s) beside kombu's record."""
    r, queue = consumers.client, f"{prefix}-q"
    channel = consumers.conn.default_channel
    consumers.publish(queue, 1)
    message = channel.basic_get(queue)
    tag = message.delivery_tag
    owner = r.hget(OWNER_KEY, tag).decode()
    assert owner == channel.owner and owner.startswith(f"{prefix}:consumer:")
    assert 0 < r.ttl(owner) <= CONSUMER_TTL
    assert json.loads(r.get(owner))["pid"] == os.getpid()
    message.ack()
    assert not r.hexists("unacked", tag) and r.zscore("unacked_index", tag) is None
    assert not r.hexists(OWNER_KEY, tag)


def test_a_dead_owners_messages_are_restored_exactly_once_by_concurrent_reapers(consumers: Consumers,
                                                                                prefix: str) -> None:
    """Four reapers at once over 30 messages of a dead owner: each message back on its queue once, with
    its bell, marked redelivered, logged and counted as heartbeat_expired."""
    r, queue, n = consumers.client, f"{prefix}-q", 30
    dead = consumers.consumer("dead")
    consumers.publish(queue, n)
    tags = {dead.basic_get(queue).delivery_tag for _ in range(n)}
    assert r.hlen("unacked") == n and r.llen(queue) == 0
    die(dead)
    reapers = [consumers.consumer(f"reaper{i}") for i in range(4)]
    results: list[list[liveness.Restored]] = [[] for _ in reapers]
    start = threading.Barrier(len(reapers))

    def reap(i: int) -> None:
        start.wait()
        for _ in range(3):
            results[i] += reapers[i].records.reap()

    threads = [threading.Thread(target=reap, args=(i,)) for i in range(len(reapers))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    restored = [x for rs in results for x in rs]
    assert sorted(x.tag for x in restored) == sorted(tags), "each message restored exactly once"
    assert {x.reason for x in restored} == {"heartbeat_expired"} and {x.owner for x in restored} == {dead.owner}
    assert {x.task for x in restored} == {"wire.test"} and {x.queue for x in restored} == {queue}
    assert r.llen(queue) == n and r.llen(reapers[0].bell(queue)) == n
    assert r.hlen("unacked") == 0 and r.hlen(OWNER_KEY) == 0 and r.zcard("unacked_index") == 0
    again = [reapers[0].basic_get(queue) for _ in range(n)]
    assert all(m.delivery_info["redelivered"] for m in again)
    assert sorted(m.payload["n"] for m in again) == list(range(n))
    assert recovered(consumers, queue, "heartbeat_expired") == n


def test_a_live_owner_keeps_its_messages_however_long_it_holds_them(consumers: Consumers, prefix: str) -> None:
    """Held for 29 minutes by a consumer that still beats: no reaper touches it; only past the visibility
    timeout (1,800 s, the last resort) does the sweep restore it, whoever holds it."""
    r, queue = consumers.client, f"{prefix}-q"
    slow, reaper = consumers.consumer("slow"), consumers.consumer("reaper")
    consumers.publish(queue, 1)
    tag = slow.basic_get(queue).delivery_tag
    vt = reaper.visibility_timeout
    assert vt == 1800
    r.zadd("unacked_index", {tag: time.time() - (vt - 60)})
    assert reaper.records.reap() == [] and reaper.records.sweep() == []
    assert r.hget(OWNER_KEY, tag).decode() == slow.owner and r.llen(queue) == 0
    r.zadd("unacked_index", {tag: time.time() - vt - 1})
    (restored,) = reaper.records.sweep()
    assert restored.tag == tag and restored.reason == "visibility_timeout" and restored.owner == reaper.owner
    assert r.llen(queue) == 1 and not r.hexists(OWNER_KEY, tag)
    assert recovered(consumers, queue, "visibility_timeout") == 1


def test_a_frozen_owner_back_after_its_messages_were_restored_cannot_ack_or_requeue_them(
        consumers: Consumers, prefix: str) -> None:
    """The restored message is taken again under the same delivery tag by another consumer: the woken
    owner's ack and requeue of that tag change nothing (kombu's would delete or duplicate the new record)."""
    r, queue = consumers.client, f"{prefix}-q"
    frozen, other = consumers.consumer("frozen"), consumers.consumer("other")
    consumers.publish(queue, 1)
    tag = frozen.basic_get(queue).delivery_tag
    die(frozen)  # its key expires while it is stopped
    (restored,) = other.records.reap()
    assert restored.tag == tag
    again = other.basic_get(queue)
    assert again.delivery_tag == tag and r.hget(OWNER_KEY, tag).decode() == other.owner
    record = r.hget("unacked", tag)
    frozen.basic_ack(tag)  # it wakes and finishes the task it held
    assert r.hget("unacked", tag) == record and r.hget(OWNER_KEY, tag).decode() == other.owner
    frozen.basic_reject(tag, requeue=True)  # or hands it back (its pool child died, say)
    assert r.llen(queue) == 0 and r.hget("unacked", tag) == record
    again.ack()
    assert r.hlen("unacked") == 0 and r.hlen(OWNER_KEY) == 0 and r.llen(queue) == 0
    assert recovered(consumers, queue, "heartbeat_expired") == 1 and recovered(consumers, queue, "requeued") == 0


def test_a_consumer_whose_heartbeat_is_gone_takes_nothing_until_it_beats_again(consumers: Consumers,
                                                                              prefix: str) -> None:
    """The take refuses a taker whose heartbeat key is gone (a reaper would restore the record at once);
    the message stays queued. Once the taker beats again, it takes."""
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    from worker.ops.redis_server import free_port

    r, queue = consumers.client, f"{prefix}-q"
    cut_off = redis.Redis(port=free_port(), socket_connect_timeout=0.2, retry=Retry(NoBackoff(), 0))
    channel = consumers.consumer("cut-off", client=cut_off)  # its beats cannot reach Redis
    consumers.publish(queue, 1)
    assert not r.exists(channel.owner)
    assert channel.basic_get(queue) is None
    assert r.llen(queue) == 1 and r.hlen("unacked") == 0
    beat = channel._heartbeat
    assert beat is not None
    beat.client = r  # reachable again
    message = channel.basic_get(queue)
    assert message is not None and r.hget(OWNER_KEY, message.delivery_tag).decode() == channel.owner


def test_a_reaper_judges_nobody_before_its_own_heartbeat_held_a_whole_ttl(consumers: Consumers,
                                                                          prefix: str) -> None:
    """A consumer that just started (or just got Redis back, or woke from a freeze) restores nothing:
    every live consumer gets one TTL to beat again before its messages could be taken from it."""
    queue = f"{prefix}-q"
    dead = consumers.consumer("dead")
    consumers.publish(queue, 1)
    dead.basic_get(queue)
    die(dead)
    fresh = consumers.consumer("fresh", settle=CONSUMER_TTL)
    assert fresh.records.reap() == []
    assert consumers.client.hlen("unacked") == 1


def test_streak_is_steady_after_a_whole_ttl_of_beats_and_a_recent_one() -> None:
    """A gap longer than the TTL, a lapsed key or a failed beat starts the run of beats again."""
    ttl, settle, recent = 15.0, 15.0, 7.5
    s = Streak()
    assert not s.steady(0, settle=settle, recent=recent)
    for t in range(0, 16, 3):
        s.beat(float(t), lapsed=t == 0, ttl=ttl)
    assert s.since == 0 and s.steady(15.0, settle=settle, recent=recent)
    assert not s.steady(23.0, settle=settle, recent=recent)  # no beat for 8 s: maybe frozen itself
    s.beat(40.0, lapsed=False, ttl=ttl)  # 25 s after the last one: its key lapsed meanwhile
    assert s.since == 40.0 and not s.steady(41.0, settle=settle, recent=recent)
    s.beat(43.0, lapsed=True, ttl=ttl)  # the key was gone (deleted, expired): start again
    assert s.since == 43.0
    s.broken()  # Redis did not answer
    assert not s.steady(60.0, settle=settle, recent=recent)


def test_status_lists_live_consumers_and_what_awaits_recovery(consumers: Consumers, prefix: str) -> None:
    """`wire status` (and /status) show each live consumer with its heartbeat age and in-flight count, and
    how many messages belong to consumers whose heartbeat is gone."""
    queue = f"{prefix}-q"
    a, b, dead = consumers.consumer("a"), consumers.consumer("b"), consumers.consumer("dead")
    a.heartbeat.queues.add("fetch")
    a.heartbeat.beat()
    consumers.publish(queue, 4)
    a.basic_get(queue)
    a.basic_get(queue)
    b.basic_get(queue)
    dead.basic_get(queue)
    die(dead)
    doc = status.collect(consumers.client, consumers.keys, None, consumers.settings)
    live = {c["consumer"].split(":")[0]: c for c in doc["consumers"]}
    assert set(live) == {"a", "b"}
    assert live["a"]["in_flight"] == 2 and live["b"]["in_flight"] == 1
    assert live["a"]["queues"] == ["fetch"] and live["a"]["pid"] == os.getpid()
    assert all(0 <= c["heartbeat_age_seconds"] < CONSUMER_TTL for c in live.values())
    assert doc["awaiting_recovery"] == 1 and doc["in_flight"] == 4
    from worker.ops.cli.status import render_status

    text = render_status(doc)
    assert "CONSUMER" in text and "awaiting recovery (held by consumers whose heartbeat expired): 1" in text
