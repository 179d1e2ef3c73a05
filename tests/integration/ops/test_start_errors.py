"""What a restart after a crash may meet, as one plain line each: the HTTP port still taken (naming
WIRE_METRICS_PORT and the process holding it) or a Redis URL without a scheme; and the children of
`wire run` die with it, by the kernel's parent-death signal or else by watching their parent."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.env import wire_env
from tests.support.helpers import wait_for
from tests.support.paths import ROOT
from worker.ops import orphans
from worker.ops.redis_server import free_port


def _wire(args: list[str], env_extra: dict[str, str], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    sources = tmp_path / "sources.yaml"
    sources.write_text("sources:\n- name: a\n  feeds: ['https://a.example/feed']\n")
    env = wire_env(sources=sources, data_dir=tmp_path / "data", **env_extra)
    return subprocess.run([sys.executable, "-m", "worker.ops.cli", *args], env=env, cwd=ROOT, capture_output=True,
                          text=True, timeout=60)


@pytest.fixture
def taken_port() -> Iterator[tuple[int, int]]:
    """Another process listening on a port: (its pid, the port). Its command line spans lines."""
    script = "import socket, time\ns = socket.socket()\ns.bind(('127.0.0.1', 0))\ns.listen()\n" \
             "print(s.getsockname()[1], flush=True)\ntime.sleep(120)\n"
    holder = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert holder.stdout is not None
    port = int(holder.stdout.readline())
    yield holder.pid, port
    holder.kill()
    holder.wait()


@pytest.mark.parametrize("command", [["run"], ["serve"]])
def test_a_port_in_use_is_one_line_naming_the_variable_and_the_holder(command: list[str], taken_port, tmp_path: Path,
                                                                     redis_url: str) -> None:
    """`wire run` (before it starts anything) and `wire serve`: exit 1, one line on stderr naming
    WIRE_METRICS_PORT and the pid holding the port, no traceback."""
    holder, port = taken_port
    env = {"WIRE_METRICS_HOST": "127.0.0.1", "WIRE_METRICS_PORT": str(port)}
    if command == ["serve"]:
        env["WIRE_REDIS_URL"] = redis_url
    done = _wire(command, env, tmp_path)
    lines = [line for line in (done.stdout + done.stderr).splitlines() if line.strip()]
    assert done.returncode == 1, (done.returncode, lines)
    assert len(lines) == 1, lines
    assert "WIRE_METRICS_PORT" in lines[0] and f"port {port}" in lines[0], lines
    assert f"pid {holder} (" in lines[0] and "socket" in lines[0], lines
    assert not (tmp_path / "data" / "redis").exists()  # `wire run` started nothing


@pytest.mark.parametrize("variable", ["WIRE_REDIS_URL", "WIRE_BROKER_URL"])
def test_a_redis_url_without_a_scheme_is_one_line_naming_the_variable(variable: str, tmp_path: Path) -> None:
    """`localhost:6379` (no `redis://`): exit 2, one line naming the variable, the value (which may carry a
    password) not echoed."""
    env = {"WIRE_REDIS_URL": "redis://127.0.0.1:1/0", variable: "user:s3cret@localhost:6379"}
    for command in (["worker"], ["run"], ["status"]):
        done = _wire(command, env, tmp_path)
        lines = [line for line in (done.stdout + done.stderr).splitlines() if line.strip()]
        assert done.returncode == 2, (command, done.returncode, lines)
        assert lines == [f"error: environment: {variable}: expected a URL with a scheme, e.g. "
                         "redis://localhost:6379/0"], (command, lines)


def _parent_of_a_sleeper(tie: str, tmp_path: Path) -> tuple[subprocess.Popen[str], int]:
    """A parent process that starts a sleeping child (`tie` sets how the child is tied to it); both pids."""
    script = textwrap.dedent(f"""
        import os, subprocess, sys, time
        from worker.ops import orphans
        me = os.getpid()
        {tie}
        print(child.pid, flush=True)
        time.sleep(120)
    """)
    parent = subprocess.Popen([sys.executable, "-c", script], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    assert parent.stdout is not None
    child = int(parent.stdout.readline())
    return parent, child


def _gone(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return True
    return state == "Z"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
def test_a_child_started_with_the_death_signal_dies_with_its_parent(tmp_path: Path) -> None:
    """`orphans.preexec` arms PR_SET_PDEATHSIG in the child: SIGKILL of the parent kills the child."""
    parent, child = _parent_of_a_sleeper(
        "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(120)'], "
        "start_new_session=True, preexec_fn=orphans.preexec(me))", tmp_path)
    try:
        assert not _gone(child)
        parent.kill()
        parent.wait(10)
        wait_for(lambda: _gone(child), timeout=5, what="the child to die with its parent")
    finally:
        parent.kill()
        if not _gone(child):
            os.kill(child, signal.SIGKILL)


def test_where_the_signal_is_unavailable_the_child_watches_its_parent(tmp_path: Path) -> None:
    """The fallback: `guard` in a child without the death signal starts a thread that kills the child
    (and its process group) once the parent is gone."""
    code = ("import time; from worker.ops import orphans; orphans.guard(); time.sleep(120)")
    parent, child = _parent_of_a_sleeper(
        "child = subprocess.Popen([sys.executable, '-c', " + repr(code) + "], start_new_session=True, "
        "env={**os.environ, orphans.PARENT_ENV: str(me)})", tmp_path)
    try:
        assert orphans.death_signal() == 0  # this test process has none either
        time.sleep(0.5)
        assert not _gone(child)
        started = time.monotonic()
        parent.kill()
        parent.wait(10)
        wait_for(lambda: _gone(child), timeout=5, what="the child to notice its parent is gone")
        print(f"child gone {time.monotonic() - started:.1f}s after its parent")
    finally:
        parent.kill()
        if not _gone(child):
            os.kill(child, signal.SIGKILL)


def test_free_port_check_passes_a_free_port() -> None:
    """The check binds and lets go: a free port raises nothing."""
    from worker.ops.ports import ensure_free

    ensure_free("127.0.0.1", free_port(), "WIRE_METRICS_PORT")
