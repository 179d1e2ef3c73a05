"""One wall-clock deadline over a whole GET: connect, TLS, headers, body, every redirect hop.

A per-read timeout restarts at every byte a server drips, so it bounds
nothing. Each GET (`http.get`) is an `Exchange` with a deadline; the
connections it opens enlist in it (`enlist`), and one watchdog thread per
process shuts their sockets down at the deadline, so a blocked read
returns at once. The thread's current exchange is what a connection
enlists in and what a connect may still spend (`current`).
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import os
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from ..errors import TransientFetchError

_local = threading.local()


@dataclass(eq=False)
class Exchange:
    """One GET, every hop, against one wall-clock deadline (time.monotonic)."""

    deadline: float
    conns: list[Any] = field(default_factory=list)
    expired: bool = False
    done: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)

    def remaining(self) -> float:
        return self.deadline - time.monotonic()

    def enlist(self, conn: Any) -> None:
        with self.lock:
            if self.expired:
                raise TransientFetchError("deadline exceeded", reason="timeout")
            if not self.done and conn not in self.conns:
                self.conns.append(conn)

    def expire(self) -> None:
        """At the deadline: shut down every socket of the exchange, so a blocked read returns now."""
        with self.lock:
            if self.done:
                return
            self.expired = True
            for conn in self.conns:
                sock = getattr(conn, "sock", None)
                if sock is not None:
                    with contextlib.suppress(OSError):  # already closed
                        # the plain socket's shutdown, also under TLS: it only wakes the reader
                        socket.socket.shutdown(sock, socket.SHUT_RDWR)

    def finish(self) -> None:
        with self.lock:
            self.done = True
            self.conns.clear()


class _Watchdog:
    """One thread per process that expires exchanges at their deadlines."""

    def __init__(self) -> None:
        self.pid = os.getpid()
        self._cond = threading.Condition()
        self._heap: list[tuple[float, int, Exchange]] = []
        self._seq = itertools.count()
        threading.Thread(target=self._run, name="wire-fetch-deadline", daemon=True).start()

    def watch(self, exchange: Exchange) -> None:
        with self._cond:
            heapq.heappush(self._heap, (exchange.deadline, next(self._seq), exchange))
            if self._heap[0][2] is exchange:  # earlier than what the thread sleeps towards
                self._cond.notify()

    def _run(self) -> None:
        with self._cond:
            while True:
                now = time.monotonic()
                while self._heap and self._heap[0][0] <= now:
                    heapq.heappop(self._heap)[2].expire()
                self._cond.wait(self._heap[0][0] - now if self._heap else None)


_watchdog_lock = threading.Lock()
_watchdog: _Watchdog | None = None


def _watch(exchange: Exchange) -> None:
    global _watchdog
    with _watchdog_lock:
        if _watchdog is None or _watchdog.pid != os.getpid():  # threads do not survive a fork
            _watchdog = _Watchdog()
        watchdog = _watchdog
    watchdog.watch(exchange)


@contextlib.contextmanager
def exchange(until: float) -> Iterator[Exchange]:
    """This thread's exchange until `until` (time.monotonic), watched; finished (its sockets let go) on exit.

    Nests: a GET made inside another (robots.txt for a redirect hop) ends by
    the outer one's deadline too, and the outer exchange is the thread's
    again on exit.
    """
    outer = getattr(_local, "exchange", None)
    if outer is not None:
        until = min(until, outer.deadline)
    current_exchange = Exchange(until)
    _watch(current_exchange)
    _local.exchange = current_exchange
    try:
        yield current_exchange
    finally:
        current_exchange.finish()
        _local.exchange = outer


def current() -> Exchange | None:
    """The calling thread's exchange (None outside a GET)."""
    return getattr(_local, "exchange", None)


def enlist(conn: Any) -> None:
    """Put `conn` under the calling thread's exchange: its socket is shut down at the deadline."""
    now = current()
    if now is not None:
        now.enlist(conn)
