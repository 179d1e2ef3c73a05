"""worker/fetch/page_store.py: page bytes round-trip through zstd, and pages stored by an older worker (zlib) still read."""

from __future__ import annotations

import threading
import zlib

from worker.fetch import page_store


def test_round_trip_and_smaller_than_the_page() -> None:
    html = b"<html><body>" + b"<p>The council met on Tuesday and voted.</p>" * 2000 + b"</body></html>"
    packed = page_store.pack(html)
    assert packed[:4] == page_store.ZSTD_MAGIC and len(packed) < len(html) // 10
    assert page_store.unpack(packed) == html
    assert page_store.unpack(page_store.pack(b"")) == b""


def test_pages_written_by_an_older_worker_with_zlib_are_read() -> None:
    html = "<p>Ünïcode and bytes \x00 survive</p>".encode() * 100
    assert page_store.unpack(zlib.compress(html, 1)) == html


def test_threads_each_get_their_own_compressor() -> None:
    """The fetch worker packs pages from 8 threads at once; zstd contexts must not be shared."""
    pages = [f"<p>page {i} ".encode() * 5000 for i in range(16)]
    results: dict[int, bytes] = {}

    def work(i: int) -> None:
        for _ in range(20):
            results[i] = page_store.unpack(page_store.pack(pages[i]))

    threads = [threading.Thread(target=work, args=(i,)) for i in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [results[i] for i in range(16)] == pages
