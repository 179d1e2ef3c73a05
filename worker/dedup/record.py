"""The stored form of a story (pure): one compact binary string per story.

Layout: a fixed header (format, version, shingle and token counts, URL
length, block count, content hash), the URL of the stored version, its
per-block minimum shingle hashes, then its bottom-k sketch, all
little-endian uint32. Binary because the sketch is most of the
bytes and the budget is 2 KB of Redis memory per story.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass
from typing import Any

import numpy as np

from .fingerprint import U32, Fingerprint, sketch

_HEADER = struct.Struct("<BIIIHH16s")
_FORMAT = 1


@dataclass(frozen=True)
class Story:
    """A known story as the index holds it: its current version's fingerprint summary."""

    story_id: str
    version: int
    content_hash: str
    n_shingles: int
    n_tokens: int
    url: str
    sketch: U32
    block_mins: U32

    def pack(self) -> bytes:
        url = self.url.encode("utf-8")[:65535]
        head = _HEADER.pack(
            _FORMAT,
            self.version,
            self.n_shingles,
            self.n_tokens,
            len(url),
            self.block_mins.size,
            bytes.fromhex(self.content_hash),
        )
        return head + url + self.block_mins.astype("<u4").tobytes() + self.sketch.astype("<u4").tobytes()

    @classmethod
    def unpack(cls, story_id: str, raw: bytes) -> Story:
        fmt, version, n_shingles, n_tokens, url_len, n_blocks, chash = _HEADER.unpack_from(raw)
        if fmt != _FORMAT:
            raise ValueError(f"unknown story record format {fmt}")
        start = _HEADER.size + url_len
        mid = start + 4 * n_blocks
        return cls(
            story_id=story_id,
            version=version,
            content_hash=chash.hex(),
            n_shingles=n_shingles,
            n_tokens=n_tokens,
            url=raw[_HEADER.size : start].decode("utf-8", "replace"),
            # read-only views of the record, no copies (the stored layout is little-endian uint32)
            sketch=np.frombuffer(raw, dtype="<u4", offset=mid).astype(np.uint32, copy=False),
            block_mins=np.frombuffer(raw, dtype="<u4", count=n_blocks, offset=start).astype(np.uint32, copy=False),
        )

    @classmethod
    def of(cls, story_id: str, version: int, url: str, fp: Fingerprint) -> Story:
        return cls(
            story_id,
            version,
            fp.content_hash,
            fp.n_shingles,
            fp.n_tokens,
            url,
            sketch(fp.hashes),
            fp.block_mins(),
        )


# The decision log is kept beside the record (same Redis list), one compact
# JSON array per decision: field names and the story id (the key) are not
# repeated in every entry.
LOG_FIELDS = (
    "time",
    "url",
    "event",
    "version",
    "kind",
    "similarity",
    "matched_url",
    "rule",
    "content_hash",
)


def pack_log(entry: dict[str, Any]) -> bytes:
    return json.dumps([entry.get(f) for f in LOG_FIELDS], ensure_ascii=False, separators=(",", ":")).encode()


def unpack_log(story_id: str, raw: bytes | str) -> dict[str, Any]:
    entry: dict[str, Any] = dict(zip(LOG_FIELDS, json.loads(raw), strict=False))
    entry["story_id"] = story_id
    return entry
