"""The HTTP server under `wire serve`: a bounded thread pool behind a gate that reads each request.

The standard library's `ThreadingHTTPServer` listens with a backlog of 5 and
gives every connection a thread for as long as the client likes: 200
concurrent probes overflowed the backlog, and a client that sent nothing (or
dripped its headers a byte at a time) held a thread indefinitely, so a few
hundred idle sockets meant a few hundred threads.

Here one gate thread holds every accepted connection in a selector until its
whole request (headers, and a body up to `max_body`) has arrived, within
`request_deadline` seconds of being accepted; only then does a thread of a
fixed pool parse and answer it, from memory. An idle or slow client costs a
file descriptor for a few seconds and no thread; a client past the deadline
gets 408 and is closed; connections beyond `max_connections` get a fast 503.
The handler class is an ordinary `BaseHTTPRequestHandler`, one request per
connection (HTTP/1.0).
"""

from __future__ import annotations

import contextlib
import io
import re
import selectors
import socket
import threading
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from http.server import HTTPServer
from typing import Any

from ..logs import get_logger

log = get_logger("wire.serve")
_HEAD_END = re.compile(rb"\r?\n\r?\n")
_CONTENT_LENGTH = re.compile(rb"^content-length[ \t]*:[ \t]*(\S*)[ \t]*\r?$", re.IGNORECASE | re.MULTILINE)


def _answer(status: str, message: str, extra: str = "") -> bytes:
    body = f'{{"error": "{message}"}}\n'.encode()
    return (f"HTTP/1.0 {status}\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n"
            f"Cache-Control: no-store\r\nConnection: close\r\n{extra}\r\n").encode() + body


BUSY = _answer("503 Service Unavailable", "server busy: too many connections", "Retry-After: 1\r\n")
TOO_SLOW = _answer("408 Request Timeout", "request not received in time")
HEAD_TOO_LARGE = _answer("431 Request Header Fields Too Large", "request head too large")


def wanted_length(buffer: bytes, max_head: int, max_body: int) -> int | None:
    """How many bytes the request in `buffer` needs in all; None while its head is incomplete.

    A body is waited for only when Content-Length is valid and at most
    `max_body`: anything else goes to the handler with the head alone, and
    the handler answers 400 or 413 without reading it. Raises ValueError when
    the head exceeds `max_head`.
    """
    end = _HEAD_END.search(buffer, 0, max_head + 4)
    if end is None:
        if len(buffer) > max_head:
            raise ValueError("request head too large")
        return None
    head = buffer[:end.start()]
    lengths = _CONTENT_LENGTH.findall(head)
    if len(lengths) != 1 or not lengths[0].isdigit() or int(lengths[0]) > max_body:
        return end.end()
    return end.end() + int(lengths[0])


class _Received:
    """A connection whose request is already read: the handler reads it from memory, writes to the socket.

    Writing has its own deadline (a client that stops reading the answer
    does not keep the thread).
    """

    def __init__(self, sock: socket.socket, data: bytes, write_deadline: float) -> None:
        self._sock = sock
        self._data = data
        self._write_deadline = write_deadline

    def makefile(self, mode: str = "rb", *args: Any, **kwargs: Any) -> io.BytesIO:
        if "r" not in mode:
            raise ValueError("answers are written with sendall")  # StreamRequestHandler.wbufsize is 0
        return io.BytesIO(self._data)

    def settimeout(self, _timeout: float | None) -> None:
        pass  # the deadlines are ours

    def setsockopt(self, *args: Any) -> None:
        self._sock.setsockopt(*args)

    def fileno(self) -> int:
        return self._sock.fileno()

    def getpeername(self) -> Any:
        return self._sock.getpeername()

    def sendall(self, data: bytes) -> None:
        deadline = time.monotonic() + self._write_deadline
        view = memoryview(data)
        while view:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("client did not read the answer in time")
            self._sock.settimeout(left)
            sent = self._sock.send(view)
            view = view[sent:]


@dataclass
class _Pending:
    sock: socket.socket
    address: Any
    deadline: float
    buffer: bytearray = field(default_factory=bytearray)


class _Gate(threading.Thread):
    """Holds accepted connections until their request is complete, then hands them to the pool."""

    def __init__(self, server: BoundedHTTPServer) -> None:
        super().__init__(name="http-gate", daemon=True)
        self.server = server
        self.selector = selectors.DefaultSelector()
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self.selector.register(self._wake_r, selectors.EVENT_READ)
        self._inbox: deque[_Pending] = deque()
        self._pending: dict[int, _Pending] = {}
        self._stopping = False

    def add(self, sock: socket.socket, address: Any) -> None:
        sock.setblocking(False)
        self._inbox.append(_Pending(sock, address, time.monotonic() + self.server.request_deadline))
        self._wake()

    def stop(self) -> None:
        self._stopping = True
        self._wake()

    def _wake(self) -> None:
        with contextlib.suppress(OSError):  # a full wake-up pipe already wakes the loop
            self._wake_w.send(b"\0")

    def run(self) -> None:
        try:
            while not self._stopping:
                try:
                    self._turn()
                except Exception as exc:  # the gate must outlive any one connection: without it nothing is served
                    log.error("http gate error", error=repr(exc))
        finally:
            for p in list(self._pending.values()):
                self._drop(p)
            self.selector.close()
            self._wake_r.close()
            self._wake_w.close()

    def _turn(self) -> None:
        for key, _ in self.selector.select(self._timeout()):
            if key.fileobj is self._wake_r:
                with contextlib.suppress(OSError):
                    self._wake_r.recv(4096)
            elif (p := self._pending.get(key.fd)) is not None:
                self._read(p)
        while self._inbox:
            p = self._inbox.popleft()
            try:
                self.selector.register(p.sock, selectors.EVENT_READ)
            except (OSError, ValueError):  # closed under us
                self.server.refuse(p.sock, None)
                continue
            self._pending[p.sock.fileno()] = p
        self._expire()

    def _timeout(self) -> float:
        if not self._pending:
            return 1.0
        return max(0.0, min(1.0, min(p.deadline for p in self._pending.values()) - time.monotonic()))

    def _read(self, p: _Pending) -> None:
        try:
            chunk = p.sock.recv(65536)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self._drop(p)
            return
        if not chunk:  # the client went away before its request was complete
            self._drop(p)
            return
        p.buffer += chunk
        try:
            need = wanted_length(bytes(p.buffer), self.server.max_head, self.server.max_body)
        except ValueError:
            self._drop(p, HEAD_TOO_LARGE)
            return
        if need is not None and len(p.buffer) >= need:
            self._forget(p)
            self.server.dispatch(p.sock, p.address, bytes(p.buffer))

    def _expire(self) -> None:
        now = time.monotonic()
        for p in [p for p in self._pending.values() if p.deadline <= now]:
            self._drop(p, TOO_SLOW if p.buffer else None)

    def _forget(self, p: _Pending) -> None:
        self.selector.unregister(p.sock)
        del self._pending[p.sock.fileno()]

    def _drop(self, p: _Pending, answer: bytes | None = None) -> None:
        self._forget(p)
        self.server.refuse(p.sock, answer)


class BoundedHTTPServer(HTTPServer):
    """An `HTTPServer` with a deep backlog, a gate with a deadline, a fixed pool and a cap on connections."""

    request_queue_size = max(128, socket.SOMAXCONN)  # the listen backlog (the kernel caps it at somaxconn)
    max_connections = 512  # open at once, waiting for their request or being answered
    workers = 16  # threads answering complete requests
    request_deadline = 5.0  # seconds from accept to the whole request (headers and body) received
    write_deadline = 15.0  # seconds to write one answer
    max_head = 64 * 1024
    max_body = 1024 * 1024

    def __init__(self, address: Any, handler: Any, bind_and_activate: bool = True) -> None:
        # before binding: a bind that fails (port in use) calls server_close, which stops these
        self._open = 0
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix="http")
        self._gate = _Gate(self)
        super().__init__(address, handler, bind_and_activate)
        self._gate.start()

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._lock:
            full = self._open >= self.max_connections
            if not full:
                self._open += 1
        if full:
            self._close(request, BUSY)
            return
        self._gate.add(request, client_address)

    def dispatch(self, sock: socket.socket, address: Any, data: bytes) -> None:
        """A complete request: answered by a pool thread."""
        sock.setblocking(True)
        self._pool.submit(self._answer, sock, address, data)

    def refuse(self, sock: socket.socket, answer: bytes | None) -> None:
        """A connection closed before it was answered (`answer`, if any, sent without waiting)."""
        self._close(sock, answer)
        self._release()

    def _answer(self, sock: socket.socket, address: Any, data: bytes) -> None:
        try:
            self.finish_request(_Received(sock, data, self.write_deadline), address)  # type: ignore[arg-type]
        except OSError:
            pass  # the client went away, or did not read the answer in time
        except Exception:
            self.handle_error(sock, address)
        finally:
            self.shutdown_request(sock)
            self._release()

    def _release(self) -> None:
        with self._lock:
            self._open -= 1

    @staticmethod
    def _close(sock: socket.socket, answer: bytes | None) -> None:
        with contextlib.suppress(OSError):
            sock.setblocking(False)
            if answer:
                with contextlib.suppress(OSError):
                    sock.recv(65536)  # what the client sent, so closing does not reset the connection
                sock.send(answer)
            sock.shutdown(socket.SHUT_WR)
        sock.close()

    def open_connections(self) -> int:
        return self._open

    def server_close(self) -> None:
        self._gate.stop()
        if self._gate.is_alive():
            self._gate.join(5)
        self._pool.shutdown(wait=False, cancel_futures=True)
        super().server_close()
