"""Each host's learned furniture in Redis: read with the batch's pages, counted with its end.

No round trip of its own: the process task reads every host's table in the
pipeline that reads the batch's pages (`read`), and `finish_pages` counts
each decided page's lines in the pipeline that records the batch's end
(`record`, one script call per page). The policy (which lines, what makes
one furniture) is `extract.furniture`; this module only stores it.

A host's table is one hash, `Keys.furniture(host)`: the host's page count
and a 63-byte record per line it counts, at most MAX_LINES of them (about
7 KB, see furniture.lua for the layout and the eviction).
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Mapping, Sequence
from importlib.resources import files
from typing import Any

import redis

from ..extract.furniture import BlockStats, Template
from ..keys import FURNITURE_TTL, Keys
from . import scripts

MAX_LINES = 120  # lines a host's hash counts: with its page count, under Redis's 128-field compact hashes
KEEP_LINES = 96  # eviction brings it back to this many, so it runs every page or two, not every page
BONUS_PAGES = 8  # eviction: pages of grace a line earns for each story it was seen with beyond the first
PAGES_FIELD = b"#pages"
_HEAD = struct.Struct("<BHIII")
_SIGS = 16
_SCRIPT = files("worker.pipeline").joinpath("furniture.lua").read_text()


def story_signature(story_id: str) -> bytes:
    """The 4 bytes a story is told apart by in a line's record (never all zero: zero marks an empty slot)."""
    sig = bytes.fromhex(story_id)[:4].rjust(4, b"\0")
    return sig if sig != b"\0\0\0\0" else b"\0\0\0\1"


def parse(host: str, raw: Mapping[bytes, bytes] | None) -> Template:
    """A host's hash (HGETALL) as its `Template`."""
    if not raw:
        return Template(host)
    pages = 0
    blocks: dict[bytes, BlockStats] = {}
    for field, rec in raw.items():
        if field == PAGES_FIELD:
            pages = int(rec)
        elif len(rec) >= _HEAD.size + _SIGS:
            stories, hits, first, last, minute = _HEAD.unpack_from(rec)
            text = rec[_HEAD.size + _SIGS:].decode("utf-8", "replace")
            blocks[field] = BlockStats(stories, hits, first, last, minute, text)
    return Template(host, pages, blocks)


class FurnitureStore:
    """Read and count hosts' furniture tables on the caller's pipeline; show and reset one for operators."""

    def __init__(self, client: redis.Redis, keys: Keys) -> None:
        self.r = client
        self.keys = keys
        self.script = client.register_script(_SCRIPT)

    def read(self, pipe: Any, host: str) -> None:
        """Queue the read of `host`'s table on `pipe`; its reply goes to `parse`."""
        pipe.hgetall(self.keys.furniture(host))

    def templates(self, hosts: Sequence[str], replies: Sequence[Mapping[bytes, bytes]]) -> dict[str, Template]:
        return {host: parse(host, raw) for host, raw in zip(hosts, replies, strict=True)}

    def record(self, pipe: Any, host: str, story_id: str, lines: Iterable[tuple[bytes, bytes]],
               now: float) -> bool:
        """Queue the count of one page's `lines` (`extract.furniture.sightings`) for story `story_id`.

        Sent as a bare EVALSHA (`scripts.queue`): run the pipeline with
        `scripts.execute(pipe, [store.script, ...])`, which loads the script
        and sends the counts again when Redis lost it.
        """
        args: list[Any] = [int(now // 60), FURNITURE_TTL, MAX_LINES, KEEP_LINES, BONUS_PAGES,
                           story_signature(story_id)]
        for key, text in lines:
            args += [key, text]
        if len(args) == 6 or not host:
            return False
        scripts.queue(pipe, self.script, [self.keys.furniture(host)], args)
        return True

    def execute(self, pipe: Any) -> list[Any]:
        """Run `pipe`, holding `record` calls among other commands (`scripts.execute`)."""
        return scripts.execute(pipe, [self.script])

    def show(self, host: str) -> Template:
        raw: Mapping[bytes, bytes] = self.r.hgetall(self.keys.furniture(host))  # type: ignore[assignment]
        return parse(host, raw)

    def reset(self, host: str) -> bool:
        """Forget what was learned of `host` (its pages go through the generic path until it is learned again)."""
        return bool(self.r.delete(self.keys.furniture(host)))

    def size(self, host: str) -> int:
        """Bytes the host's table takes in Redis (MEMORY USAGE)."""
        return int(self.r.memory_usage(self.keys.furniture(host), samples=0) or 0)
