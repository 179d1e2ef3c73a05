"""`wire run` started by a test: the process (and, through it, its whole tree), its output, the ops CLI."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import redis

from tests.support.helpers import descendants, wait_for
from tests.support.paths import ROOT


def alive(pid: int) -> bool:
    """Whether `pid` runs (a zombie does not)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def wire_cli(args: list[str], cwd: Path, env: dict[str, str], timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """One `wire` command (`python -m worker.ops.cli ARGS`), its output captured as text."""
    return subprocess.run([sys.executable, "-m", "worker.ops.cli", *args], env=env, cwd=cwd, capture_output=True,
                          text=True, timeout=timeout)


class Run:
    """One `wire run` process (and, through it, its whole tree)."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.env, self.log_path = env, log
        self.log = open(log, "ab")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen([sys.executable, "-m", "worker.ops.cli", "run"], env=env, cwd=ROOT,
                                     stdout=self.log, stderr=subprocess.STDOUT)
        self.family: set[int] = set()

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_consuming(self, client: redis.Redis, timeout: float = 60) -> set[int]:
        """Until both its workers beat (and the prefork pool is up): the pids of its tree."""
        def ready() -> bool:
            self.family = descendants(self.proc.pid)
            return len(self.consumer_pids(client) & self.family) >= 2
        wait_for(ready, timeout=timeout, what=f"wire run to consume\n{self.output()[-3000:]}")
        return self.family

    @staticmethod
    def consumer_pids(client: redis.Redis) -> set[int]:
        out = set()
        for member in client.keys("*:consumer:*"):
            raw = client.get(member)
            if raw:
                out.add(int(json.loads(raw)["pid"]))
        return out

    def kill_tree(self) -> float:
        """SIGKILL it and every process below it at once, as a container crash would; when (time.time)."""
        self.family |= descendants(self.proc.pid)
        at = time.time()
        for pid in [self.proc.pid, *self.family]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self.proc.wait(10)
        return at

    def alive(self) -> list[int]:
        return [p for p in self.family if alive(p)]

    def stop(self) -> None:
        """SIGINT, as Ctrl-C; SIGKILL what is left, so nothing of a failed test runs on a shared machine."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(40)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        for pid in self.alive():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self.log.close()
