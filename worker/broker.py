"""kombu's Redis transport, made safe against a worker killed mid-delivery.

**The window it closes.** kombu consumes with `BRPOP queue`, and only after the
reply has reached the worker does it record the message in its `unacked` hash
(from which a dead worker's messages are restored after the visibility
timeout). Redis removes the message from the queue when it answers the BRPOP,
so a worker SIGKILLed between the two (the reply in its socket, or parsed but
not yet recorded) loses the message for good: it is in neither the queue nor
`unacked`. `tests/test_redis_faults.py` freezes a worker inside BRPOP and shows
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

Differences from kombu: the queues of one BRPOP are tried in queue order and
each queue in priority order (kombu interleaves priority first); a foreign
producer that pushes without a bell is still served, one message per second
until the script has put its bells back. A payload that is not a kombu message
is moved to the `unacked_malformed` list instead of being lost.

**And one avoidable cost.** kombu builds a new `redis.Redis` client object for
each ack and each event it publishes (`Channel._create_client`, reached through
`conn_or_acquire`). Constructing one fills a ~200-entry callback table; in
`bench/pipeline.py` that was a quarter of all Redis-client CPU in both workers.
A client object holds no connection of its own (commands borrow one from the
pool), so one per channel and pool serves every caller, across threads too.
"""

from __future__ import annotations

import time
from typing import Any

import redis
from kombu.transport import redis as kombu_redis
from kombu.transport import virtual
from kombu.utils.encoding import bytes_to_str
from kombu.utils.json import dumps, loads

from .logs import get_logger
from .outage import is_oom

MALFORMED_KEY = "unacked_malformed"
log = get_logger("wire.broker")

# KEYS: unacked hash, unacked index, malformed list, then per queue its bell and its P priority lists.
# ARGV: P, now, then per queue 1 (record as unacked) or 0 (a no-ack consumer).
TAKE = """
local p = tonumber(ARGV[1])
local width = p + 1
for g = 0, (#KEYS - 3) / width - 1 do
  local first = 4 + g * width
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
    if ARGV[3 + g] == '1' then
      local ok, msg = pcall(cjson.decode, item)
      local props = ok and type(msg) == 'table' and type(msg['properties']) == 'table' and msg['properties']
      local info = props and type(props['delivery_info']) == 'table' and props['delivery_info']
      local tag = props and props['delivery_tag']
      if not (info and type(tag) == 'string') then
        redis.call('LPUSH', KEYS[3], item)
        return false
      end
      local ex = cjson.encode(info['exchange'] or '')
      local rk = cjson.encode(info['routing_key'] or '')
      -- the same record kombu writes (dumps([message, exchange, routing_key])), the message kept verbatim
      redis.call('HSET', KEYS[1], tag, '[' .. item .. ',' .. ex .. ',' .. rk .. ']')
      redis.call('ZADD', KEYS[2], ARGV[2], tag)
    end
    return {g, item}
  end
end
return false
"""


class QoS(kombu_redis.QoS):
    """kombu's ack emulation, kept working when Redis is out of memory.

    A Redis out of memory (`noeviction`) refuses every command queued in a
    MULTI, deletes included, and kombu acks, rejects and restores in MULTIs:
    the refused ack escaped Celery's consumer loop and the worker exited.
    Here an ack is two plain deletes (allowed when Redis is full), and a
    requeue Redis refuses leaves the message in `unacked` and is tried again
    on every restore cycle until Redis takes it (or, should the worker stop
    first, the visibility timeout restores it): a task handed back is never
    dropped and never acked.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._unrestored: set[str] = set()  # requeues refused for lack of memory, still in `unacked`

    def append(self, message: Any, delivery_tag: str) -> None:
        # TAKE already recorded the message in unacked, atomically with taking it off its queue
        virtual.QoS.append(self, message, delivery_tag)

    def ack(self, delivery_tag: str) -> None:
        # the hash entry first: a restore that finds an index entry without it restores nothing
        with self.channel.conn_or_acquire() as client:
            pipe = client.pipeline(transaction=False)
            pipe.hdel(self.unacked_key, delivery_tag)
            pipe.zrem(self.unacked_index_key, delivery_tag)
            pipe.execute()
        virtual.QoS.ack(self, delivery_tag)

    def reject(self, delivery_tag: str, requeue: bool = False) -> None:
        if not requeue:
            self.ack(delivery_tag)
            return
        try:
            self.restore_by_tag(delivery_tag, leftmost=True)
        except redis.ResponseError as exc:
            if not is_oom(exc):
                raise
            self._unrestored.add(delivery_tag)
            log.warning("redis out of memory: task kept unacked, requeued once Redis takes writes",
                        delivery_tag=delivery_tag, waiting=len(self._unrestored))
        virtual.QoS.ack(self, delivery_tag)

    def _retry_unrestored(self) -> None:
        for tag in sorted(self._unrestored):
            try:
                self.restore_by_tag(tag, leftmost=True)
            except redis.ResponseError as exc:
                if is_oom(exc):
                    return  # still full: the next restore cycle tries again
                raise
            self._unrestored.discard(tag)
            log.info("task requeued after redis ran out of memory", delivery_tag=tag, waiting=len(self._unrestored))

    def restore_visible(self, start: int = 0, num: int = 10, interval: int = 10) -> None:
        try:
            self._retry_unrestored()
            super().restore_visible(start, num, interval)
        except redis.ResponseError as exc:  # kombu's restore lock and its MULTIs are writes
            if not is_oom(exc):
                raise
            log.warning("redis out of memory: restoring unacked tasks waits", waiting=len(self._unrestored))

    def restore_unacked(self, client: Any = None) -> None:
        """At shutdown: requeue what this worker holds; what Redis refuses stays unacked (visibility timeout)."""
        with self.channel.conn_or_acquire(client) as client:
            for tag in list(self._delivered) + sorted(self._unrestored):
                try:
                    self.restore_by_tag(tag, client=client)
                except redis.ResponseError as exc:
                    if not is_oom(exc):
                        raise
                    log.warning("redis out of memory: task left unacked, restored after the visibility timeout",
                                delivery_tag=tag)
        self._delivered.clear()
        self._unrestored.clear()


class Channel(kombu_redis.Channel):
    QoS = QoS
    _shared_client: Any = None
    _take_script: Any = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._no_ack_queues: set[str] = set()
        super().__init__(*args, **kwargs)
        if self.global_keyprefix:
            raise ValueError("worker.broker does not support kombu's global_keyprefix transport option")

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

    # ------------------------------------------------------------------ taking

    def _take(self, queues: list[str], record: bool | None = None) -> tuple[str, bytes] | None:
        """Pop one message from the first of `queues` that has one, recorded as unacked in the same step."""
        keys: list[str] = [self.unacked_key, self.unacked_index_key, MALFORMED_KEY]
        flags: list[int] = []
        for queue in queues:
            keys.append(self.bell(queue))
            keys.extend(self._q_for_pri(queue, pri) for pri in self.priority_steps)
            flags.append(int(record if record is not None else queue not in self._no_ack_queues))
        with self.conn_or_acquire() as client:
            if self._take_script is None:
                self._take_script = client.register_script(TAKE)
            reply = self._take_script(keys=keys, args=[len(self.priority_steps), time.time(), *flags], client=client)
        if not reply:
            return None
        return queues[int(reply[0])], reply[1]

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

    def _do_restore_message(self, payload: dict[str, Any], exchange: str, routing_key: str, pipe: Any,
                            leftmost: bool = False) -> None:
        """kombu's restore (back on the queue, marked redelivered) plus the message's bell."""
        try:
            try:
                payload["headers"]["redelivered"] = True
                payload["properties"]["delivery_info"]["redelivered"] = True
            except KeyError:
                pass
            pri = self._get_message_priority(payload, reverse=False)
            for queue in self._lookup(exchange, routing_key):
                (pipe.lpush if leftmost else pipe.rpush)(self._q_for_pri(queue, pri), dumps(payload))
                pipe.lpush(self.bell(queue), 1)
        except self.connection_errors:
            raise  # abort the transaction: it would drop the message from unacked without requeueing it
        except Exception:
            kombu_redis.crit("Could not restore message: %r", payload, exc_info=True)

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
    return "worker.broker:Transport" if scheme in ("redis", "rediss") else None
