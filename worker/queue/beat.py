"""Beat scheduler: new schedule entries run at once, and only one beat schedules.

- Celery's default entry starts its clock at "now", so a source with a 1 h
  interval would first be discovered an hour after beat starts. Our entries
  start at the epoch: a new source is discovered immediately; a restarted beat
  keeps the last-run times it persisted.
- Two beats (a rolling deploy, an operator's mistake) would schedule every
  discovery twice. Each tick holds a Redis lock with a TTL; a beat that does
  not hold it schedules nothing and tries again, so a standby takes over
  within `BEAT_LOCK_TTL` seconds of the active beat dying.
"""

from __future__ import annotations

import os
import socket
import uuid
from datetime import UTC, datetime
from typing import Any

import redis
from celery.beat import PersistentScheduler, ScheduleEntry

from ..keys import BEAT_LOCK_TTL
from ..logs import get_logger
from . import outage

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
log = get_logger("wire.beat")

# Renew only a lock we own; take it when it is free.
_LOCK_LUA = """
local holder = redis.call('GET', KEYS[1])
if holder == false or holder == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
return 0
"""


class ImmediateEntry(ScheduleEntry):
    # Same signature as ScheduleEntry: the shelve store re-creates entries positionally.
    def __init__(self, name: Any = None, task: Any = None, last_run_at: datetime | None = None,
                 *args: Any, **kwargs: Any) -> None:
        super().__init__(name, task, last_run_at or _EPOCH, *args, **kwargs)


class WireScheduler(PersistentScheduler):
    Entry = ImmediateEntry

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        conf = self.app.conf
        self._lock_key: str = conf.wire_beat_lock_key
        self._client = redis.Redis.from_url(conf.broker_url, socket_timeout=10, socket_connect_timeout=5)
        self._lock = self._client.register_script(_LOCK_LUA)
        self._me = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self._active = False
        self._unsent: dict[str, Any] = {}  # entries whose send Redis refused, by name
        self._lock_error: str | None = None

    def apply_entry(self, entry: Any, producer: Any = None) -> None:
        """Send a due entry; one Redis refused (down, out of memory) is sent again on the next ticks.

        Celery has already moved the entry to its next run when it sends it, and
        only logs a failed send: a source's discovery would skip a whole interval.
        """
        try:
            self.apply_async(entry, producer=producer, advance=False)
        except Exception as exc:
            if not outage.unavailable(exc):
                raise
            if entry.name not in self._unsent:
                log.warning("redis unavailable: schedule entry kept to send again", entry=entry.name,
                            reason=outage.reason(exc))
            self._unsent[entry.name] = entry
        else:
            self._unsent.pop(entry.name, None)

    def _send_unsent(self) -> None:
        for name, entry in list(self._unsent.items()):
            try:
                self.apply_async(entry, producer=self.producer, advance=False)
            except Exception as exc:
                if not outage.unavailable(exc):
                    raise
                return  # still unavailable: the next tick tries again
            del self._unsent[name]
            log.info("schedule entry sent after redis came back", entry=name)

    def tick(self, *args: Any, **kwargs: Any) -> float:
        try:
            held = bool(self._lock(keys=[self._lock_key], args=[self._me, int(BEAT_LOCK_TTL * 1000)]))
        except redis.RedisError as exc:
            # out of memory included: the lock is a write; standing by until Redis takes it
            if self._lock_error != outage.reason(exc):
                log.warning("beat lock unavailable", reason=outage.reason(exc), error=str(exc))
                self._lock_error = outage.reason(exc)
            held = False
        else:
            self._lock_error = None
        if held != self._active:
            log.info("beat lock " + ("acquired: scheduling" if held else "held elsewhere: standing by"),
                     holder=self._me)
            self._active = held
        if not held:
            return min(5.0, self.max_interval)
        if self._unsent:
            self._send_unsent()
        return float(super().tick(*args, **kwargs))
