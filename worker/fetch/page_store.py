"""Fetched page bytes at rest in Redis, between the fetch and the process stage.

zstd level 1: on the 181 pages of the extraction corpus (170 KB of HTML on
average) it compresses in 0.27 ms and decompresses in 0.08 ms per page to 21%
of the size; zlib level 1, used before, took 0.89 ms and 0.37 ms for 24%: a
full millisecond of machine CPU per page, about 7% of the whole pipeline.
Pages written by an older worker (zlib) are still read: the two formats are
told apart by the zstd frame's magic number.
"""

from __future__ import annotations

import threading
import zlib

import zstandard

ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
LEVEL = 1

_local = threading.local()  # compressor contexts are not thread-safe; the fetch worker runs threads


def pack(content: bytes) -> bytes:
    compressor = getattr(_local, "compressor", None)
    if compressor is None:
        compressor = _local.compressor = zstandard.ZstdCompressor(level=LEVEL, write_content_size=True)
    return compressor.compress(content)


def unpack(raw: bytes) -> bytes:
    if raw[:4] == ZSTD_MAGIC:
        decompressor = getattr(_local, "decompressor", None)
        if decompressor is None:
            decompressor = _local.decompressor = zstandard.ZstdDecompressor()
        return decompressor.decompress(raw)
    return zlib.decompress(raw)  # written by a worker from before zstd
