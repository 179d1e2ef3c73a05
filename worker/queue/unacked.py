"""kombu's unacked records, each naming its owner: owner-checked acks and restores, the reaper, the sweep.

`worker/broker.py`'s take writes kombu's record (`unacked`, `unacked_index`) and its owner
(`unacked_owner`: delivery tag -> the taker's heartbeat key) in one script. Everything that
later removes a record is one script too, and checks who may:

- an ack (or a reject without requeue) removes the record only if it is the acker's;
- a consumer's own restore (a reject with requeue, the messages it held at shutdown) only
  restores its own records;
- the reaper restores a record only while its owner's heartbeat is gone (`worker/liveness.py`);
- the visibility-timeout sweep, the last resort, restores any record older than the timeout.

The same delivery tag comes back when a restored message is taken again, so without the owner
check a consumer frozen while its messages were restored would, on waking, ack (delete) or
requeue (duplicate) the record another consumer now holds.
"""

from __future__ import annotations

import time
from typing import Any

from kombu.transport import redis as kombu_redis
from kombu.utils.encoding import bytes_to_str
from kombu.utils.json import dumps, loads

from ..keys import Keys
from . import liveness

# KEYS: unacked hash, unacked index, unacked owner hash, the acker's heartbeat key. ARGV: the tag.
ACK = """
local owner = redis.call('HGET', KEYS[3], ARGV[1])
if owner and owner ~= KEYS[4] then return 0 end
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('HDEL', KEYS[3], ARGV[1])
return 1
"""

# Put an unacked message back on its queue(s) with a bell, if it is still what the caller read
# and the caller may restore it. Reapers, the owner's own acks and restores and the sweep may race
# for one record: each is one script, so exactly one of them wins.
# KEYS: unacked hash, unacked index, unacked owner hash, an owner's heartbeat key, then per target
#       queue its (priority) list and its bell.
# ARGV: tag, the record as read, mode, the payload to push (marked redelivered), '1' to push it at
#       the back of the queue (a requeue) or '0' at its front, the index ceiling (mode 'expired').
# Modes: 'dead': the record is KEYS[4]'s and KEYS[4] is gone (the reaper);
#        'own': the record is KEYS[4]'s, or names nobody (a consumer hands back its own message);
#        'expired': taken before the ceiling, whoever holds it (the visibility-timeout sweep).
RESTORE = """
local tag, mode = ARGV[1], ARGV[3]
local record = redis.call('HGET', KEYS[1], tag)
local owner = redis.call('HGET', KEYS[3], tag)
if mode == 'dead' then
  if owner ~= KEYS[4] or redis.call('EXISTS', KEYS[4]) == 1 then return 0 end
  if not record then
    redis.call('HDEL', KEYS[3], tag)
    return 0
  end
elseif mode == 'own' then
  if owner and owner ~= KEYS[4] then return 0 end
elseif mode == 'expired' then
  local score = redis.call('ZSCORE', KEYS[2], tag)
  if not score or tonumber(score) > tonumber(ARGV[6]) then return 0 end
else
  return redis.error_reply('unknown restore mode ' .. tostring(mode))
end
if record ~= ARGV[2] then return 0 end
redis.call('HDEL', KEYS[1], tag)
redis.call('ZREM', KEYS[2], tag)
redis.call('HDEL', KEYS[3], tag)
for i = 5, #KEYS, 2 do
  if ARGV[5] == '1' then redis.call('LPUSH', KEYS[i], ARGV[4]) else redis.call('RPUSH', KEYS[i], ARGV[4]) end
  redis.call('LPUSH', KEYS[i + 1], 1)
end
return 1
"""


def redelivered(payload: dict[str, Any]) -> dict[str, Any]:
    """kombu's marks on a message that goes back to its queue."""
    try:
        payload["headers"]["redelivered"] = True
        payload["properties"]["delivery_info"]["redelivered"] = True
    except (KeyError, TypeError):
        pass
    return payload


class Records:
    """The unacked records of one channel's Redis (`worker.queue.broker.Channel`), as its consumer sees them."""

    def __init__(self, channel: Any) -> None:
        self.channel = channel
        self._scripts: dict[str, Any] = {}

    def _script(self, client: Any, source: str) -> Any:
        script = self._scripts.get(source)
        if script is None:
            script = self._scripts[source] = client.register_script(source)
        return script

    def drop(self, tag: str, client: Any = None) -> bool:
        """Ack: remove the record of `tag` if it is still this consumer's (or names nobody)."""
        ch = self.channel
        with ch.conn_or_acquire(client) as client:
            keys = [ch.unacked_key, ch.unacked_index_key, ch.unacked_owner_key, ch.owner]
            return bool(self._script(client, ACK)(keys=keys, args=[tag], client=client))

    def restore(self, tag: str, *, mode: str, owner: str, reason: str, leftmost: bool = False,
                ceiling: float = 0.0, client: Any = None) -> liveness.Restored | None:
        """Put the message of `tag` back on its queue with a bell, marked redelivered, if `mode`
        allows (see RESTORE); what was restored, or None."""
        ch = self.channel
        with ch.conn_or_acquire(client) as client:
            raw = client.hget(ch.unacked_key, tag)
            if raw is None:
                if mode == "dead":  # acked meanwhile: only its owner's name may be left to clean
                    self._run(client, tag, b"", mode, owner, "", [], leftmost, ceiling)
                return None
            try:
                message, exchange, routing_key = loads(bytes_to_str(raw))
                payload = redelivered(message)
                pri = ch._get_message_priority(payload, reverse=False)
                queues = list(ch._lookup(exchange, routing_key))
            except ch.connection_errors:
                raise
            except Exception:
                kombu_redis.crit("Could not restore message: %r", raw, exc_info=True)
                return None
            targets = [(ch._q_for_pri(q, pri), ch.bell(q)) for q in queues]
            if not targets or not self._run(client, tag, raw, mode, owner, dumps(payload), targets, leftmost,
                                            ceiling):
                return None
        headers = payload.get("headers") or {}
        return liveness.Restored(tag=str(tag), task=str(headers.get("task", "")), task_id=str(headers.get("id", "")),
                                 queue=queues[0], owner=owner, reason=reason)

    def _run(self, client: Any, tag: str, raw: bytes, mode: str, owner: str, payload: str,
             targets: list[tuple[str, str]], leftmost: bool, ceiling: float) -> bool:
        ch = self.channel
        keys = [ch.unacked_key, ch.unacked_index_key, ch.unacked_owner_key, owner]
        for queue_list, bell in targets:
            keys += [queue_list, bell]
        args = [tag, raw, mode, payload, int(leftmost), ceiling]
        return bool(self._script(client, RESTORE)(keys=keys, args=args, client=client))

    def hand_back(self, tags: list[str], *, reason: str, client: Any = None, leftmost: bool = False) -> None:
        """This consumer's own messages back to their queues (a requeue, or at shutdown)."""
        if not tags:
            return
        ch = self.channel
        with ch.conn_or_acquire(client) as client:
            done = [r for tag in tags
                    if (r := self.restore(tag, mode="own", owner=ch.owner, reason=reason, leftmost=leftmost,
                                          client=client)) is not None]
            liveness.report(client, ch.wire_key_prefix, done)

    def reap(self) -> list[liveness.Restored]:
        """Restore the messages of every owner whose heartbeat is gone, once this consumer's own
        heartbeat is steady (see worker.queue.liveness)."""
        ch = self.channel
        beat = ch.live_heartbeat
        if beat is None or not beat.steady():
            return []
        with ch.conn_or_acquire() as client:
            done = [r for tag, owner in liveness.find_dead(client, ch.unacked_owner_key, beat.key)
                    if (r := self.restore(tag, mode="dead", owner=owner, reason="heartbeat_expired",
                                          client=client)) is not None]
            liveness.report(client, ch.wire_key_prefix, done)
        return done

    def sweep(self, start: int = 0, num: int | None = None) -> list[liveness.Restored]:
        """The last resort: restore what was taken longer than the visibility timeout ago, whoever holds it."""
        ch = self.channel
        done: list[liveness.Restored] = []
        with ch.conn_or_acquire() as client:
            ceiling = time.time() - ch.visibility_timeout
            try:
                with kombu_redis.Mutex(client, ch.unacked_mutex_key, ch.unacked_mutex_expire):
                    expired = client.zrange(ch.unacked_index_key, ceiling, 0, desc=True, byscore=True,
                                            offset=num and start, num=num, withscores=True)
                    for tag, _ in expired or []:
                        restored = self.restore(bytes_to_str(tag), mode="expired", owner=ch.owner,
                                                reason="visibility_timeout", ceiling=ceiling, client=client)
                        if restored is not None:
                            done.append(restored)
            except kombu_redis.MutexHeld:
                return done
            liveness.report(client, ch.wire_key_prefix, done)
            liveness.prune(client, Keys.for_prefix(ch.wire_key_prefix))
        return done
