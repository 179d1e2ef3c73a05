"""A big page's freed heap goes back to the system (glibc's malloc keeps it otherwise)."""

from __future__ import annotations

import ctypes
import ctypes.util
from pathlib import Path

import pytest

from worker.ops.malloc import in_use
from worker.pipeline import memory


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def test_small_pages_do_not_trim() -> None:
    """Trimming walks the arenas: an ordinary page never pays for it."""
    assert memory.after_page(memory.BIG_PAGE - 1) is False


@pytest.mark.skipif(in_use() != "glibc malloc" or memory._trim() is None, reason="glibc's malloc only")
def test_big_page_returns_the_freed_heap() -> None:
    """150 MB of small blocks freed below one live block stay in the process until the trim after a big page
    gives them back, as a 5 MB page's lxml tree would."""
    libc = ctypes.CDLL(ctypes.util.find_library("c"))
    libc.malloc.restype = ctypes.c_void_p
    libc.free.argtypes = [ctypes.c_void_p]
    blocks = [libc.malloc(1024) for _ in range(150_000)]
    for block in blocks:
        ctypes.memset(block, 1, 1024)  # touch the pages: they count in RSS
    pin = libc.malloc(1024)  # holds the top of the heap, as the worker's next allocation would
    for block in blocks:
        libc.free(block)
    before = _rss_mb()
    try:
        assert memory.after_page(memory.BIG_PAGE) is True
        after = _rss_mb()
    finally:
        libc.free(pin)
    assert before - after > 100, f"RSS {before:.0f} MB before the trim, {after:.0f} MB after"
