"""Give the heap back to the system after a big page.

lxml's tree for a 5 MB page takes a few hundred MB; glibc's malloc keeps
what it freed in its arenas unless the top of the heap is free, so one
hostile page could leave a thread-pool worker 200 MB fatter for the rest of
its life (the prefork pool recycles its children, the thread pool cannot).
`malloc_trim(0)` returns the free pages; it walks the arenas, so it runs
only after a big page. Under jemalloc (what `wire run` and the image
preload) glibc's arenas are empty and the call costs nothing: jemalloc
returns its own free pages on a timer.
"""

from __future__ import annotations

import ctypes
import ctypes.util
from collections.abc import Callable
from functools import cache

BIG_PAGE = 1024 * 1024  # bytes of HTML; news pages are mostly 50-500 KB


@cache
def _trim() -> Callable[[int], int] | None:
    """glibc's malloc_trim, or None where the C library has none (musl, macOS)."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        trim: Callable[[int], int] = libc.malloc_trim
    except (OSError, AttributeError):
        return None
    return trim


def after_page(size: int) -> bool:
    """Return free heap pages to the system after a page of at least BIG_PAGE bytes; whether it did."""
    if size < BIG_PAGE:
        return False
    trim = _trim()
    if trim is None:
        return False
    trim(0)
    return True
