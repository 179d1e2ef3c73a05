"""The embedded Redis of `wire run` (worker.ops.redis_server.start_embedded): its port from one run to the next."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from worker.ops.redis_server import RedisProcess, start_embedded


@pytest.fixture
def embedded(tmp_path: Path) -> Iterator[list[RedisProcess]]:
    started: list[RedisProcess] = []
    yield started
    for server in started:
        server.stop()


def test_the_embedded_redis_keeps_its_port_while_it_is_free(tmp_path: Path, embedded: list[RedisProcess]) -> None:
    """A restarted `wire run` gets the Redis port of its last run (an exported WIRE_REDIS_URL stays right);
    when that port is taken, another one."""
    folder = tmp_path / "redis"
    embedded.append(start_embedded(folder))
    port = embedded[-1].port
    embedded[-1].stop()
    embedded.append(start_embedded(folder))
    assert embedded[-1].port == port
    embedded[-1].stop()
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", port))
        holder.listen()
        embedded.append(start_embedded(folder))
        assert embedded[-1].port != port
    assert (folder / "port").read_text().strip() == str(embedded[-1].port)


def test_the_embedded_redis_is_out_of_reach_of_a_terminal_ctrl_c(tmp_path: Path,
                                                                 embedded: list[RedisProcess]) -> None:
    """It leads a session of its own: a Ctrl-C (SIGINT to the terminal's foreground process group) reaches
    only `wire run`, which stops Redis after the workers that still need it."""
    embedded.append(start_embedded(tmp_path / "redis"))
    pid = embedded[-1].process.pid
    assert os.getsid(pid) == pid and os.getpgid(pid) != os.getpgid(0)
