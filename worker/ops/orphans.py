"""Children of `wire run` die with it, however it dies.

`wire run` starts each child in a session of its own (so a Ctrl-C reaches only `wire run`,
which then stops them in order). A SIGKILLed `wire run` (the OOM killer may pick exactly
that process) used to leave them running as orphans, still consuming, still holding the
HTTP port. Now each child is started with Linux's parent-death signal (`PR_SET_PDEATHSIG`),
set between fork and exec: the kernel kills it when `wire run` dies. The signal follows the
thread that forked the child, so children are started from `wire run`'s main thread, which
lives as long as the process. Where `prctl` is unavailable, the child watches its parent
from a thread instead (`guard`). A prefork worker's own children get SIGKILL from Celery
when their parent dies (Celery sets the same signal in each pool process).
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import signal
import sys
import threading
from collections.abc import Callable

PR_SET_PDEATHSIG = 1
PR_GET_PDEATHSIG = 2
PARENT_ENV = "WIRE_RUN_PID"  # set by `wire run` for its children: the pid they must not outlive


def _prctl() -> Callable[..., int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        return libc.prctl
    except (OSError, AttributeError):
        return None


def set_death_signal(sig: int) -> bool:
    """Ask the kernel to send `sig` to this process when its parent (thread) dies; False if it cannot."""
    prctl = _prctl()
    return prctl is not None and prctl(PR_SET_PDEATHSIG, ctypes.c_ulong(sig), 0, 0, 0) == 0


def death_signal() -> int:
    """This process's parent-death signal (0: none, or unknown)."""
    prctl = _prctl()
    if prctl is None:
        return 0
    sig = ctypes.c_int(0)
    return sig.value if prctl(PR_GET_PDEATHSIG, ctypes.byref(sig), 0, 0, 0) == 0 else 0


def preexec(parent: int, sig: int = signal.SIGKILL) -> Callable[[], None]:
    """A `preexec_fn` (run in the child between fork and exec) that ties the child to `parent`."""

    def tie() -> None:
        set_death_signal(sig)
        if os.getppid() != parent:  # the parent died before the signal was armed
            os.kill(os.getpid(), sig)

    return tie


def watch_parent(parent: int, interval: float = 1.0, sig: int = signal.SIGKILL) -> threading.Thread:
    """A daemon thread that signals this process (its group, when it leads one) once `parent` is gone."""

    def watch() -> None:
        stop = threading.Event()
        while not stop.wait(interval):
            if os.getppid() != parent:
                with contextlib.suppress(OSError):
                    if os.getpgid(0) == os.getpid():  # a group of its own: its pool children go too
                        os.killpg(os.getpid(), sig)
                    os.kill(os.getpid(), sig)

    thread = threading.Thread(target=watch, name="wire-parent-watch", daemon=True)
    thread.start()
    return thread


def guard() -> None:
    """In a child of `wire run`: die with it, by the kernel's signal or else by watching the parent."""
    raw = os.environ.get(PARENT_ENV)
    if not raw or not raw.isdigit():
        return
    parent = int(raw)
    if death_signal():
        return  # armed by `preexec` before exec
    if os.getppid() != parent:
        os.kill(os.getpid(), signal.SIGKILL)
    watch_parent(parent)
