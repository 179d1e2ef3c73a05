"""The stored form of a story (pure): one compact binary string per story.

Layout: a fixed header (format, version, shingle and token counts, URL
length, block count, content hash, line count), the URL of the stored
version, its per-block minimum shingle hashes (uint32), its first
MAX_LINES line hashes (uint16), then its bottom-k sketch (uint32), all
little-endian. Binary because the sketch is most of the bytes and the
budget is 2 KB of Redis memory per story. Format 1 records (written before
line hashes were stored, until they expire with the window) unpack with no
line hashes.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from .fingerprint import MAX_LINES, U32, Fingerprint, sketch

# format 1's header is a prefix of format 2's: the lookup script digests the first
# 33 bytes (format, version, counts, content hash), the same fields in both
_HEADER_1 = struct.Struct("<BIIIHH16s")
_HEADER = struct.Struct("<BIIIHH16sH")
_FORMAT = 2


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
    line_hashes: npt.NDArray[np.uint16]  # the first MAX_LINES lines' hashes, in text order (none: format 1)

    def pack(self) -> bytes:
        url = self.url.encode("utf-8")[:65535]
        lines = self.line_hashes[:MAX_LINES]
        head = _HEADER.pack(
            _FORMAT,
            self.version,
            self.n_shingles,
            self.n_tokens,
            len(url),
            self.block_mins.size,
            bytes.fromhex(self.content_hash),
            lines.size,
        )
        return (
            head
            + url
            + self.block_mins.astype("<u4").tobytes()
            + lines.astype("<u2").tobytes()
            + self.sketch.astype("<u4").tobytes()
        )

    @classmethod
    def unpack(cls, story_id: str, raw: bytes) -> Story:
        fmt = raw[0] if raw else None
        if fmt == _FORMAT:
            _, version, n_shingles, n_tokens, url_len, n_blocks, chash, n_lines = _HEADER.unpack_from(raw)
            head = _HEADER.size
        elif fmt == 1:
            _, version, n_shingles, n_tokens, url_len, n_blocks, chash = _HEADER_1.unpack_from(raw)
            head, n_lines = _HEADER_1.size, 0
        else:
            raise ValueError(f"unknown story record format {fmt}")
        start = head + url_len
        lines_at = start + 4 * n_blocks
        mid = lines_at + 2 * n_lines
        return cls(
            story_id=story_id,
            version=version,
            content_hash=chash.hex(),
            n_shingles=n_shingles,
            n_tokens=n_tokens,
            url=raw[head:start].decode("utf-8", "replace"),
            # read-only views of the record, no copies (the stored layout is little-endian)
            sketch=np.frombuffer(raw, dtype="<u4", offset=mid).astype(np.uint32, copy=False),
            block_mins=np.frombuffer(raw, dtype="<u4", count=n_blocks, offset=start).astype(np.uint32, copy=False),
            line_hashes=np.frombuffer(raw, dtype="<u2", count=n_lines, offset=lines_at).astype(
                np.uint16, copy=False
            ),
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
            fp.line_hashes[:MAX_LINES],
        )


# The decision log is kept beside the record (same Redis list), one compact
# JSON array per decision: field names and the story id (the key) are not
# repeated in every entry. It keeps the newest keys.DECISION_LOG_MAX decisions;
# a full log starts with a count of those dropped (a JSON object).
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
    "furniture",  # lines dropped as the site's learned furniture, when there were any
)


def pack_log(entry: dict[str, Any]) -> bytes:
    values = [entry.get(f) for f in LOG_FIELDS]
    if values[-1] is None:  # most pages drop no learned furniture: their entries stay as short as before
        values.pop()
    return json.dumps(values, ensure_ascii=False, separators=(",", ":")).encode()


def unpack_log(story_id: str, raw: bytes | str) -> dict[str, Any]:
    """One log entry; the count of decisions dropped from a full log (gather.lua's `trim_log`)
    reads as the entry `{"event": "dropped", "dropped": n}`."""
    value = json.loads(raw)
    if isinstance(value, dict):
        return {"event": "dropped", "dropped": int(value.get("dropped", 0)), "story_id": story_id}
    entry: dict[str, Any] = dict(zip(LOG_FIELDS, value, strict=False))
    entry["story_id"] = story_id
    return entry
