"""kombu's Redis transport, made safe against a worker killed mid-delivery.

**The window it closes.** kombu consumes with `BRPOP queue`, and only after the
reply has reached the worker does it record the message in its `unacked` hash
(from which a dead worker's messages are restored after the visibility
timeout). Redis removes the message from the queue when it answers the BRPOP,
so a worker SIGKILLed between the two (the reply in its socket, or parsed but
not yet recorded) loses the message for good: it is in neither the queue nor
`unacked`. `tests/e2e/test_redis_faults.py` freezes a worker inside BRPOP and shows
kombu's transport losing the message every time.

**How.** Every queue gets a doorbell list beside it (`<queue>\\x06\\x16bell`):
publishing pushes the message and one bell in one MULTI. Workers block in BRPOP
on the bells, not on the queues, and then take the message with a Lua script
(`TAKE`) that pops it and records it in `unacked` in one atomic step. A worker
killed after its BRPOP loses only a bell; the message is still queued. The
script keeps one bell per waiting message (it puts back lost bells and drops
spare ones), and a worker whose BRPOP times out (1 s, nothing rung) takes from
its queues anyway, so a message whose bell was lost waits at most that long.
Round trips per message are unchanged: BRPOP plus the script, where kombu
did BRPOP plus its HSET/ZADD pipeline.

**Owners.** The take also names its taker in the `unacked_owner` hash (delivery tag ->
the taker's heartbeat key), and refuses to record a message for a taker whose heartbeat is
gone. Acks, rejects and a consumer's own restores are owner-checked scripts: a consumer whose
messages were restored while it was frozen cannot remove or requeue the record another
consumer now holds under the same delivery tag. Every consumer reaps the messages of owners
whose heartbeat expired (`worker/liveness.py`); the visibility-timeout sweep stays as the last
resort. Records without an owner (written by kombu's own transport) are restored by that sweep
only, as before.

Differences from kombu: the queues of one BRPOP are tried in queue order and
each queue in priority order (kombu interleaves priority first); a foreign
producer that pushes without a bell is still served, one message per second
until the script has put its bells back. A payload that is not a kombu message
is moved to the `unacked_malformed` list instead of being lost (the newest
BROKER_MALFORMED_MAX kept, each drop logged and counted).

**And one avoidable cost.** kombu builds a new `redis.Redis` client object for
each ack and each event it publishes (`Channel._create_client`, reached through
`conn_or_acquire`). Constructing one fills a ~200-entry callback table; in
`bench/pipeline.py` that was a quarter of all Redis-client CPU in both workers.
A client object holds no connection of its own (commands borrow one from the
pool), so one per channel and pool serves every caller, across threads too.
"""

from __future__ import annotations

import os
import time
from typing import Any

import redis
from kombu.transport import redis as kombu_redis
from kombu.transport import virtual
from kombu.utils.encoding import bytes_to_str
from kombu.utils.json import dumps, loads

from ..keys import BROKER_MALFORMED_MAX, BROKER_MALFORMED_TTL, Keys
from ..logs import get_logger
from ..metrics import MetricsBatch
from . import liveness
from .outage import is_oom
from .unacked import Records

# The kombu minor versions this transport was written and tested against. It overrides
# private methods of kombu's Redis transport (`_brpop_start`, `_brpop_read`, `_put`,
# `_create_client` ...), which kombu may change in any release: pyproject.toml pins kombu
# to these, and tests/unit/queue/test_kombu_version.py fails on any other.
KOMBU_TESTED = ("5.7",)

MALFORMED_KEY = "unacked_malformed"  # capped at BROKER_MALFORMED_MAX (the newest), expiring BROKER_MALFORMED_TTL
# Delivery tag -> the heartbeat key of the consumer holding the message. Beside kombu's own
# `unacked` hash (unprefixed, like it): it is written in the same script as kombu's record, and
# the owner's key names its own prefix, so any reaper can judge any record.
OWNER_KEY = "unacked_owner"
STALE = -1  # TAKE's answer to a taker whose heartbeat key is gone
log = get_logger("wire.broker")

# KEYS: unacked hash, unacked index, malformed list, unacked owner hash, the taker's heartbeat key,
#       then per queue its bell and its P priority lists.
# ARGV: P, now, the malformed list's cap and TTL, then per queue 1 (record as unacked) or 0 (a
#       no-ack consumer). A malformed payload answers {-1, payloads dropped to make room}.
TAKE = """
local p = tonumber(ARGV[1])
local width = p + 1
for i = 5, #ARGV do
  if ARGV[i] == '1' then
    -- a taker whose heartbeat is gone may have lost its messages to a reaper already, and one
    -- would restore this record at once: it beats again before it takes any more
    if redis.call('EXISTS', KEYS[5]) == 0 then return -1 end
    break
  end
end
for g = 0, (#KEYS - 5) / width - 1 do
  local first = 6 + g * width
  local item = false
  for i = 1, p do
    item = redis.call('RPOP', KEYS[first + i])
    if item then break end
  end
  -- one bell per waiting message: put back bells lost with a killed worker, drop spare ones
  local left = 0
  for i = 1, p do left = left + redis.call('LLEN', KEYS[first + i]) end
  local bells = redis.call('LLEN', KEYS[first])
  if left == 0 then
    if bells > 0 then redis.call('DEL', KEYS[first]) end
  elseif bells > left then
    redis.call('LTRIM', KEYS[first], 0, left - 1)
  elseif bells < left then
    for _ = 1, math.min(left - bells, 100) do redis.call('LPUSH', KEYS[first], 1) end
  end
  if item then
    if ARGV[5 + g] == '1' then
      local ok, msg = pcall(cjson.decode, item)
      local props = ok and type(msg) == 'table' and type(msg['properties']) == 'table' and msg['properties']
      local info = props and type(props['delivery_info']) == 'table' and props['delivery_info']
      local tag = props and props['delivery_tag']
      if not (info and type(tag) == 'string') then
        local cap = tonumber(ARGV[3])
        local n = redis.call('LPUSH', KEYS[3], item)
        local dropped = math.max(0, n - cap)
        if dropped > 0 then redis.call('LTRIM', KEYS[3], 0, cap - 1) end
        redis.call('EXPIRE', KEYS[3], ARGV[4])
        return {-1, dropped}
      end
      local ex = cjson.encode(info['exchange'] or '')
      local rk = cjson.encode(info['routing_key'] or '')
      -- the same record kombu writes (dumps([message, exchange, routing_key])), the message kept verbatim
      redis.call('HSET', KEYS[1], tag, '[' .. item .. ',' .. ex .. ',' .. rk .. ']')
      redis.call('ZADD', KEYS[2], ARGV[2], tag)
      redis.call('HSET', KEYS[4], tag, KEYS[5])
    end
    return {g, item}
  end
end
return false
"""


class QoS(kombu_redis.QoS):
    """kombu's ack emulation, owner-checked (`unacked.Records`), the reaper of dead owners'
    messages, and kept working when Redis is out of memory.

    A Redis out of memory (`noeviction`) refuses every command queued in a
    MULTI, deletes included, and kombu acks, rejects and restores in MULTIs:
    the refused ack escaped Celery's consumer loop and the worker exited.
    Here every ack and restore is one script that deletes before it writes,
    and Redis runs such a script to its end when full (a script's first
    write decides; a delete is allowed): acks and requeues go through
    during the outage. What still writes first (the sweep's lock) waits for
    the next cycle.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._next_reap = 0.0
        self._next_sweep = float("-inf")

    def append(self, message: Any, delivery_tag: str) -> None:
        # TAKE already recorded the message in unacked, atomically with taking it off its queue
        virtual.QoS.append(self, message, delivery_tag)

    def ack(self, delivery_tag: str) -> None:
        self.channel.records.drop(delivery_tag)
        virtual.QoS.ack(self, delivery_tag)

    def reject(self, delivery_tag: str, requeue: bool = False) -> None:
        if requeue:
            self.restore_by_tag(delivery_tag, leftmost=True)
        else:
            self.channel.records.drop(delivery_tag)
        virtual.QoS.ack(self, delivery_tag)

    def restore_by_tag(self, tag: str, client: Any = None, leftmost: bool = False) -> None:
        self.channel.records.hand_back([tag], client=client, leftmost=leftmost, reason="requeued")

    def restore_unacked(self, client: Any = None) -> None:
        """At shutdown: the messages delivered and not acked go back (those still ours)."""
        self.channel.records.hand_back(list(self._delivered), client=client, reason="shutdown")
        self._delivered.clear()

    def restore_visible(self, start: int = 0, num: int | None = 10, interval: int = 10) -> None:
        """Called by kombu every few seconds while consuming: reap dead owners (every REAP_EVERY
        seconds), and now and then restore what is older than the visibility timeout.

        kombu's call-count throttle (`interval`) is replaced by these clocks.
        """
        now = time.monotonic()
        try:
            if now >= self._next_reap:
                self._next_reap = now + liveness.REAP_EVERY
                try:
                    self.channel.records.reap()
                except (*self.channel.connection_errors, redis.OutOfMemoryError):
                    raise  # kombu skips this round and tries again
                except Exception:  # a bug in one reap must not stop the sweep or the consumer
                    kombu_redis.crit("Could not reap dead consumers' messages", exc_info=True)
            if now >= self._next_sweep:
                self._next_sweep = now + max(1.0, min(60.0, self.visibility_timeout / 10))
                self.channel.records.sweep(start, num)
        except redis.ResponseError as exc:  # the sweep's lock is a write: refused when Redis is full
            if not is_oom(exc):
                raise
            log.warning("redis out of memory: restoring unacked tasks waits for the next cycle")


class Channel(kombu_redis.Channel):
    QoS = QoS
    from_transport_options = (*kombu_redis.Channel.from_transport_options, "wire_key_prefix")  # type: ignore[assignment]
    wire_key_prefix = "wire"  # where heartbeats and the recovery counters live (celery_app sets it)
    unacked_owner_key = OWNER_KEY
    _shared_client: Any = None
    _take_script: Any = None
    _heartbeat: liveness.Heartbeat | None = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._no_ack_queues: set[str] = set()
        self.records = Records(self)
        super().__init__(*args, **kwargs)
        if self.global_keyprefix:
            raise ValueError("worker.queue.broker does not support kombu's global_keyprefix transport option")

    def _create_client(self, asynchronous: bool = False) -> Any:
        if asynchronous:
            return super()._create_client(asynchronous=True)
        client = self._shared_client
        if self._pool is None and self.connection.client is None:
            # The channel's connection was closed under it (the broker went away and
            # Celery's consumer is reconnecting): kombu can no longer build a pool here
            # and crashed the whole worker (AttributeError on conninfo.hostname) while
            # restoring or acking the messages this channel delivered. The old client's
            # pool reconnects by itself once Redis is back, so those calls still reach it.
            if client is None:
                raise redis.ConnectionError("the broker connection of this channel is closed")
            return client
        if client is None or client.connection_pool is not self.pool:  # a new pool after a reconnect
            client = self._shared_client = super()._create_client()
        return client

    def bell(self, queue: str) -> str:
        """The doorbell list of `queue`: one entry per message published to it."""
        return f"{queue}{self.sep}bell"

    # ------------------------------------------------------------------ owners

    @property
    def heartbeat(self) -> liveness.Heartbeat:
        """This process's heartbeat in this channel's Redis, beating before the channel takes anything."""
        beat = self._heartbeat
        if beat is None or beat.pid != os.getpid():
            beat = self._heartbeat = liveness.heartbeat_for(self._connparams(), self.wire_key_prefix)
        return beat

    @property
    def live_heartbeat(self) -> liveness.Heartbeat | None:
        """The heartbeat this channel has started in this process, if any (asking starts none)."""
        beat = self._heartbeat
        return beat if beat is not None and beat.pid == os.getpid() else None

    @property
    def owner(self) -> str:
        """The heartbeat key this channel's records name."""
        beat = self.live_heartbeat
        return beat.key if beat is not None else Keys.for_prefix(self.wire_key_prefix).consumer(
            liveness.process_identity())

    # ------------------------------------------------------------------ taking

    def _take(self, queues: list[str], record: bool | None = None) -> tuple[str, bytes] | None:
        """Pop one message from the first of `queues` that has one, recorded as unacked (and as this
        consumer's) in the same step."""
        flags = [int(record if record is not None else queue not in self._no_ack_queues) for queue in queues]
        beat = self.heartbeat if any(flags) else None  # the owner's key exists before its first record
        keys: list[str] = [self.unacked_key, self.unacked_index_key, MALFORMED_KEY, self.unacked_owner_key,
                           beat.key if beat is not None else self.owner]
        for queue in queues:
            keys.append(self.bell(queue))
            keys.extend(self._q_for_pri(queue, pri) for pri in self.priority_steps)
        with self.conn_or_acquire() as client:
            if self._take_script is None:
                self._take_script = client.register_script(TAKE)
            script = self._take_script
            args = [len(self.priority_steps), time.time(), BROKER_MALFORMED_MAX, BROKER_MALFORMED_TTL, *flags]
            reply = script(keys=keys, args=args, client=client)
            if reply == STALE and beat is not None and beat.beat():
                # this process was frozen or cut off past its heartbeat's TTL: alive again, it may take
                args[1] = time.time()
                reply = script(keys=keys, args=args, client=client)
            if reply and reply != STALE and int(reply[0]) < 0:
                self._set_aside(client, int(reply[1]))
                return None
        if not reply or reply == STALE:
            return None
        return queues[int(reply[0])], reply[1]

    def _set_aside(self, client: Any, dropped: int) -> None:
        """Log a payload TAKE moved to the malformed list, and count those its cap pushed out."""
        log.warning("a payload that is not a Celery message was set aside" if not dropped else
                    "a payload that is not a Celery message was set aside; the list is full: oldest dropped",
                    list=MALFORMED_KEY, cap=BROKER_MALFORMED_MAX, dropped=dropped)
        if dropped:
            batch = MetricsBatch()
            batch.inc("wire_broker_malformed_dropped_total", dropped)
            liveness.count(client, self.wire_key_prefix, batch)

    def _brpop_start(self, timeout: float | None = None) -> None:
        if timeout is None:
            timeout = self.brpop_timeout
        queues = self._queue_cycle.consume(len(self.active_queues))
        if not queues:
            return
        self._in_poll = self.client.connection
        self._brpop_sent_at = time.monotonic()  # type: ignore[assignment]  # kombu declares it None
        self.client.connection.send_command("BRPOP", *[self.bell(q) for q in queues], timeout or 0)

    def _brpop_read(self, **options: Any) -> bool:
        try:
            try:
                rung = self.client.parse_response(self.client.connection, "BRPOP", **options)
            except self.connection_errors:
                self.client.connection.disconnect()  # reconnect on the next poll
                raise
            if self._closing:
                raise kombu_redis.Empty()  # the message stays queued; its bell is put back by the next take
            if rung:
                queue = bytes_to_str(rung[0]).rsplit(self.sep, 1)[0]
                queues = [queue] if queue in self.active_queues else []
            else:  # nothing rang for a whole BRPOP timeout: look for messages whose bell was lost
                queues = list(self.active_queues)
            taken = self._take(queues) if queues else None
            if taken is None:
                raise kombu_redis.Empty()
            queue, item = taken
            self._queue_cycle.rotate(queue)
            self.connection._deliver(loads(bytes_to_str(item)), queue)
            return True
        finally:
            self._in_poll = None  # type: ignore[assignment]  # kombu declares it bool
            flush = getattr(self, "_flush_brpop_reauth", None)
            if flush is not None:
                flush()

    def _take_one(self, queue: str, record: bool | None = None) -> Any:
        taken = self._take([queue], record)
        if taken is None:
            raise kombu_redis.Empty()
        return loads(bytes_to_str(taken[1]))

    def _get(self, queue: str, timeout: Any = None) -> Any:
        return self._take_one(queue)

    def basic_get(self, queue: str, no_ack: bool = False, **kwargs: Any) -> Any:
        try:
            raw = self._take_one(queue, record=not no_ack)
        except kombu_redis.Empty:
            return None
        message = self.Message(raw, channel=self)
        if not no_ack:
            self.qos.append(message, message.delivery_tag)
        return message

    def basic_consume(self, queue: str, no_ack: bool, *args: Any, **kwargs: Any) -> Any:
        if no_ack:
            self._no_ack_queues.add(queue)
        else:
            self._no_ack_queues.discard(queue)
            self.heartbeat.queues.add(queue)  # and it beats from now on, before the first take
        return super().basic_consume(queue, no_ack, *args, **kwargs)

    # ------------------------------------------------------------------ publishing

    def _put(self, queue: str, message: dict[str, Any], **kwargs: Any) -> None:
        key = self._q_for_pri(queue, self._get_message_priority(message, reverse=False))
        bell = self.bell(queue)
        commands: list[tuple[str, tuple[Any, ...]]] = [("lpush", (key, dumps(message))), ("lpush", (bell, 1))]
        expires = self._expires.get(queue) if self._expires else None
        if expires is not None:
            commands += [("pexpire", (self._q_for_pri(queue, pri), expires)) for pri in self.priority_steps]
            commands.append(("pexpire", (bell, expires)))
        batch = kwargs.pop("_publish_batch", None)
        if batch is not None:  # the producer's pipeline: message before bell, in order
            for name, args in commands:
                batch.add(name, *args)
            return
        with self.conn_or_acquire() as client, client.pipeline(transaction=True) as pipe:
            for name, args in commands:
                getattr(pipe, name)(*args)
            pipe.execute()

    def _restore(self, message: Any, leftmost: bool = False) -> None:
        self.qos.restore_by_tag(message.delivery_tag, leftmost=leftmost)

    # ------------------------------------------------------------------ queue admin

    def _purge(self, queue: str) -> int:
        count = int(super()._purge(queue))
        with self.conn_or_acquire() as client:
            client.delete(self.bell(queue))
        return count

    def _delete(self, queue: str, *args: Any, **kwargs: Any) -> None:
        super()._delete(queue, *args, **kwargs)
        with self.conn_or_acquire(client=kwargs.get("client")) as client:
            client.delete(self.bell(queue))


class Transport(kombu_redis.Transport):
    Channel = Channel


def transport_for(broker_url: str) -> str | None:
    """The transport Celery should use for `broker_url`: ours for Redis, kombu's choice otherwise."""
    scheme = broker_url.split("://", 1)[0].lower()
    return "worker.queue.broker:Transport" if scheme in ("redis", "rediss") else None
