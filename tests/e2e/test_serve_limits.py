"""`wire serve` under load and against slow clients: a deep backlog, a deadline on each request,
a bounded thread pool and a cap on open connections (worker.httpserver), on a real `wire serve`."""

from __future__ import annotations

import os
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.env import wire_env
from tests.support.helpers import http_get, wait_for
from tests.support.paths import ROOT
from worker.ops.httpserver import BoundedHTTPServer, wanted_length
from worker.ops.redis_server import RedisProcess, free_port

DEADLINE = BoundedHTTPServer.request_deadline


@pytest.fixture
def wire_serve(redis_server: RedisProcess, prefix: str, tmp_path: Path) -> Iterator[tuple[int, int]]:
    """A `wire serve` process on a free loopback port: (port, pid)."""
    sources = tmp_path / "sources.yaml"
    sources.write_text("sources:\n- name: example\n  feeds: [https://news.example.com/feed]\n  interval: 1m\n")
    env = wire_env(redis_url=redis_server.url, key_prefix=prefix, sources=sources, log_format="json")
    port = free_port()
    log = open(tmp_path / "serve.log", "wb")  # noqa: SIM115 - closed below
    proc = subprocess.Popen([sys.executable, "-m", "worker.ops.cli", "serve", "--host", "127.0.0.1", "--port", str(port)],
                            env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_for(lambda: http_get(f"http://127.0.0.1:{port}/healthz")[0] == 200, timeout=30, what="wire serve")
        yield port, proc.pid
    finally:
        proc.terminate()
        proc.wait(10)
        log.close()


def get(port: int, path: str = "/healthz", timeout: float = 5.0) -> tuple[int, float]:
    """A GET over a fresh connection: (status, seconds); status 0 when nothing answered in time."""
    started = time.monotonic()
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
            s.settimeout(max(0.1, timeout - (time.monotonic() - started)))
            s.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
            head = s.recv(64)
        status = int(head.split()[1]) if head.startswith(b"HTTP/") else 0
    except OSError:
        status = 0
    return status, time.monotonic() - started


def threads_of(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/task"))


def test_200_concurrent_healthz_are_all_answered(wire_serve: tuple[int, int]) -> None:
    """200 clients connecting at the same instant all get their /healthz answered (200) within 5 s."""
    port, _ = wire_serve
    n = 200
    barrier = threading.Barrier(n)
    results: list[tuple[int, float]] = []

    def client() -> None:
        barrier.wait()
        results.append(get(port))

    workers = [threading.Thread(target=client) for _ in range(n)]
    for t in workers:
        t.start()
    for t in workers:
        t.join(30)
    times = sorted(t for _, t in results)
    failed = [r for r in results if r[0] != 200]
    print(f"{n} concurrent /healthz: {n - len(failed)} answered 200, median {statistics.median(times):.3f}s, "
          f"max {times[-1]:.3f}s")
    assert len(results) == n and not failed, f"{len(failed)} of {n} not answered 200: {failed[:5]}"


def test_slowloris_is_cut_off_and_does_not_block_others(wire_serve: tuple[int, int]) -> None:
    """A client dripping its headers (a byte every 0.3 s) and one dripping a declared body are closed
    within the request deadline (408), and /healthz is answered fast meanwhile."""
    port, _ = wire_serve
    drips = [b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Drip: " + b"a" * 200,
             b"POST /reingest HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n" + b"{" * 100]
    ended: dict[int, tuple[float, bytes]] = {}

    def drip(i: int, payload: bytes) -> None:
        started = time.monotonic()
        with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
            try:
                for b in payload:
                    s.send(bytes([b]))
                    time.sleep(0.3)
                answer = s.recv(200)
            except OSError:
                answer = b"(reset)"
            if not answer:
                answer = b"(closed)"
            ended[i] = (time.monotonic() - started, answer)

    threads = [threading.Thread(target=drip, args=(i, p), daemon=True) for i, p in enumerate(drips)]
    for t in threads:
        t.start()
    time.sleep(1.0)
    others = [get(port, timeout=2.0) for _ in range(10)]
    for t in threads:
        t.join(DEADLINE + 10)
    print(f"slow clients ended after {[round(v[0], 2) for v in ended.values()]}s; "
          f"/healthz meanwhile: max {max(t for _, t in others):.3f}s")
    assert all(status == 200 and took < 1.0 for status, took in others), others
    assert len(ended) == 2, f"a slow client was never cut off: {ended}"
    for took, answer in ended.values():
        assert took < DEADLINE + 2.0, ended
        assert answer.startswith(b"HTTP/1.0 408") or answer == b"(reset)", ended


def test_500_idle_connections_make_no_threads_and_leave_room(wire_serve: tuple[int, int]) -> None:
    """500 connections that send nothing cost no thread each; /healthz is still answered at once, and the
    idle connections are closed after the deadline."""
    port, pid = wire_serve
    before = threads_of(pid)
    idle = []
    try:
        for _ in range(500):
            idle.append(socket.create_connection(("127.0.0.1", port), timeout=5))
        time.sleep(1.0)
        during = threads_of(pid)
        status, took = get(port, timeout=3.0)
        print(f"threads of wire serve: {before} before, {during} with 500 idle connections; "
              f"/healthz {status} in {took:.3f}s")
        assert during < before + 20, (before, during)
        assert status == 200 and took < 1.0, (status, took)
        time.sleep(DEADLINE + 1.0)
        idle[0].settimeout(1.0)
        assert idle[0].recv(10) == b"", "an idle connection outlived the request deadline"
    finally:
        for s in idle:
            s.close()


def test_connections_beyond_the_cap_get_a_fast_503(wire_serve: tuple[int, int]) -> None:
    """With `max_connections` connections open and idle, one more is answered 503 at once, not queued."""
    port, _ = wire_serve
    idle = []
    try:
        for _ in range(BoundedHTTPServer.max_connections):
            idle.append(socket.create_connection(("127.0.0.1", port), timeout=5))
        time.sleep(0.5)
        status, took = get(port, timeout=3.0)
        assert status == 503 and took < 1.0, (status, took)
    finally:
        for s in idle:
            s.close()
    wait_for(lambda: get(port)[0] == 200, timeout=DEADLINE + 5, what="room again once they closed")


def test_oversized_body_is_refused_without_reading_it(wire_serve: tuple[int, int]) -> None:
    """A 2 MiB Content-Length is answered 413 at once: the server does not wait for (or read) the body."""
    port, _ = wire_serve
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(b"POST /login HTTP/1.1\r\nHost: x\r\nContent-Length: 2097152\r\n\r\n")
        answer = s.recv(100)
    assert answer.startswith(b"HTTP/1.0 413"), answer
    assert time.monotonic() - started < 2.0


HEAD_ONLY = -1  # the whole buffer: the head, and no body waited for


@pytest.mark.parametrize(("buffer", "need"), [
    (b"GET / HTTP/1.1\r\nHost: x\r\n", None),
    (b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", HEAD_ONLY),
    (b"GET / HTTP/1.0\n\n", HEAD_ONLY),
    (b"POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\n", 5),
    (b"POST / HTTP/1.1\r\ncontent-length:  5 \r\n\r\n", 5),
    (b"POST / HTTP/1.1\r\nContent-Length: 99999999\r\n\r\n", HEAD_ONLY),  # over max_body: the handler says 413
    (b"POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n", HEAD_ONLY),  # invalid: the handler says 400
    (b"POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", HEAD_ONLY),  # ambiguous: 400
])
def test_wanted_length(buffer: bytes, need: int | None) -> None:
    """How much of a request the gate waits for before handing it to a thread (head plus declared body)."""
    expected = None if need is None else len(buffer) + max(need, 0)
    assert wanted_length(buffer, 64 * 1024, 1024 * 1024) == expected


def test_head_larger_than_the_cap_is_refused() -> None:
    """A head with no end in sight past `max_head` is refused (431), not buffered without bound."""
    with pytest.raises(ValueError):
        wanted_length(b"GET / HTTP/1.1\r\nX: " + b"a" * 70_000, 64 * 1024, 1024)
