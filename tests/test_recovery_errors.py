"""The children of `wire run` die with it, by the kernel's parent-death signal or else by watching their
parent."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from tests.helpers import wait_for
from worker import orphans

ROOT = Path(__file__).resolve().parents[1]


def _parent_of_a_sleeper(tie: str, tmp_path: Path) -> tuple[subprocess.Popen[str], int]:
    """A parent process that starts a sleeping child (`tie` sets how the child is tied to it); both pids."""
    script = textwrap.dedent(f"""
        import os, subprocess, sys, time
        from worker import orphans
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
    code = ("import time; from worker import orphans; orphans.guard(); time.sleep(120)")
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
