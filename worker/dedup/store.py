"""The Redis side of dedup: key layout, the read-only lookup script and the
commit script that records a decision and publishes it atomically.

Keys (all under the namespace, all with a TTL of the window; no sweep job):

    {ns}:u:{url hash}       story id (8 bytes) last decided for this canonical URL
    {ns}:s:{story id}       list: the story's current version (record.Story,
                            binary) at index 0, then its decision log (every
                            version and alias, for explain: the newest
                            DECISION_LOG_MAX, after a count of those dropped)
    {ns}:epoch              commit counter (optimistic concurrency, see below)
    {ns}:i:{bucket}         the near-duplicate index: 2**15 hashes (named by bits
                            1-15 of the shingle hash, 2 raw bytes) of up to 16
                            fields (bit 0 and bits 16-18, 1 raw byte), each a
                            string of 16-byte entries (shingle hash 4 | story
                            id 8 | minute stamp 4), one per stored bottom hash

Memory and lookup cost give this shape. Every top-level Redis key costs ~165
bytes (dict entry, expiry entry, object header), so a story owns two keys and
its index entries share bucket keys. A lookup reads one field per query hash:
the 2**19 fields hold ~11 entries each at 1M stories, so the bytes a lookup
reads, and its time, barely grow with the store (whole 2**15-bucket strings
held ~180 entries at 1M, and reading them made a lookup 3x slower than at 10k).
An exact copy is found through the index (it shares every bottom hash) and
recognised by the content hash in the record: there is no per-text key.

Expiry without a sweep: story and URL keys carry the window as TTL. Index
entries cannot, so each carries a stamp; the commit that appends to a field
first drops its entries older than the window (a prefix: entries are appended
in time order), and a bucket key nobody writes expires whole after the window.
An entry that outlived its story points at a missing record and is skipped.

Why two scripts: similarity is computed in Python (numpy), so the
decision cannot be made inside one script (`Store.run` sends a commit and
the next document's lookup in one round trip: engine.submit_many). Every
commit increments
{ns}:epoch; a commit that finds the epoch its lookup saw knows nothing has
been written since and records at once. Otherwise it re-reads everything the
lookup read and compares a SHA-1 digest (of the URL key, the index hits for
every query hash and the candidate records); if another worker recorded
anything that could change this decision in between, it answers `conflict`
and the caller decides again. Two copies of a story racing therefore
serialise on the index entries they share, and exactly one of them publishes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib.resources import files
from typing import Any, NamedTuple

import numpy as np
import redis
from redis.commands.core import Script

from ..errors import DedupError
from ..keys import DECISION_LOG_MAX, dedup_bucket_key, dedup_story_key, dedup_url_key
from .fingerprint import U32, Fingerprint
from .models import Decision
from .record import Story, pack_log, unpack_log

# index hashes read per lookup, the document's smallest: a stored story's 6 are among
# them unless the document is ~5x longer than it
QUERY_HASHES = 32
STORE_HASHES = 6  # index entries written per new story version: its smallest shingle hashes
INDEX_MAX_IDS = 8  # stories kept per shingle hash (first win): bounds hot shingles
# story records fetched per lookup, best score first (gather.lua: a hit on a hash
# shared by n stories scores 1/n, so one rare shared hash outranks common phrases)
MAX_CANDIDATES = 5
LOAD_CHUNK = 200  # stories per load.lua call


def _script(name: str) -> str:
    pkg = files(__package__)
    return pkg.joinpath("gather.lua").read_text() + "\n" + pkg.joinpath(name).read_text()


def packed(hashes: U32) -> bytes:
    """Shingle hashes as the scripts take them: 4 bytes each, big-endian with the top two bytes swapped.

    Indexed hashes are the smallest of their text, so their top byte is
    almost always 0; leading with the second byte keeps the scripts' plain
    `string.find` from stopping at every entry of a bucket. Bytes 3-4 (the
    low 16 bits) name the bucket.
    """
    h = hashes.astype(np.uint32)
    swapped = ((h & 0x00FF0000) << 8) | ((h & 0xFF000000) >> 8) | (h & 0xFFFF)
    return swapped.astype(">u4").tobytes()


@dataclass(frozen=True)
class View:
    """What the lookup saw: the URL key, the query, their digest and the candidate stories."""

    url_key: str
    query: bytes
    digest: str
    epoch: bytes  # the namespace's commit counter at lookup time (b"" before the first commit)
    url_story_id: str | None
    stories: tuple[Story, ...]

    def hash_story_id(self, content_hash: str) -> str | None:
        """The candidate whose current text has this content hash (an exact copy), if any."""
        return next((s.story_id for s in self.stories if s.content_hash == content_hash), None)


@dataclass(frozen=True)
class Write:
    """A decision as the scripts write it (`write` in gather.lua): record, log, index, stream entries."""

    story_id: str
    log_entry: dict[str, Any]
    stored: Story | None  # the new current version (new, update), None to keep the stored one
    index: bytes  # packed hashes to index (the new version's smallest), b"" for none
    entries: Sequence[tuple[str, dict[str, str]]]  # (stream, fields) to XADD
    maxlen: int | None

    @classmethod
    def of(
        cls,
        fp: Fingerprint,
        decision: Decision,
        log_entry: dict[str, Any],
        stored: Story | None,
        entries: Sequence[tuple[str, dict[str, str]]],
        maxlen: int | None,
    ) -> Write:
        index = packed(fp.hashes[:STORE_HASHES]) if stored is not None else b""
        return cls(decision.story_id, log_entry, stored, index, entries, maxlen)

    def keys_and_args(self, window_ms: int) -> tuple[list[str], list[Any]]:
        """The stream keys (KEYS[2..]) and the ARGV tail `write` reads."""
        keys: list[str] = []
        args: list[Any] = [
            window_ms,
            bytes.fromhex(self.story_id),
            self.stored.pack() if self.stored is not None else b"",
            pack_log(self.log_entry),
            self.index,
            INDEX_MAX_IDS,
            DECISION_LOG_MAX,
        ]
        for stream, fields in self.entries:
            keys.append(stream)
            args += ["" if self.maxlen is None else self.maxlen, len(fields)]
            for k, v in fields.items():
                args += [k, v]
        return keys, args


class Call(NamedTuple):
    """One script call for `Store.run`: the script, its keys and args, and how to read its reply."""

    script: Script
    keys: list[str]
    args: list[Any]
    parse: Callable[[Any], Any]


class LoadRow(NamedTuple):
    """One story for `Store.load`, prepared without Redis (so it can be built in another process)."""

    url_id: str
    story_id: str
    record: bytes
    log: bytes
    hashes: bytes  # packed smallest shingle hashes, indexed


def _binary_client(client: redis.Redis) -> redis.Redis:
    # records are binary: reuse the caller's settings but never decode replies
    pool = client.connection_pool
    kwargs = dict(pool.connection_kwargs)
    if not kwargs.get("decode_responses"):
        return client
    kwargs["decode_responses"] = False
    return redis.Redis(connection_pool=redis.ConnectionPool(connection_class=pool.connection_class, **kwargs))


class Store:
    def __init__(self, client: redis.Redis, namespace: str, window_seconds: int) -> None:
        self.r = _binary_client(client)
        self.ns = namespace
        self.window_ms = int(window_seconds * 1000)
        self._lookup = self.r.register_script(_script("lookup.lua"))
        self._commit = self.r.register_script(_script("commit.lua"))
        self._load = self.r.register_script(_script("load.lua"))

    # key names
    def url_key(self, url_id: str) -> str:
        return dedup_url_key(self.ns, url_id)

    def story_key(self, story_id: str) -> bytes:
        return dedup_story_key(self.ns, story_id)

    def bucket_of(self, h: bytes) -> tuple[bytes, bytes]:
        """Index key and field of a packed hash (gather.lua's `bucket_of`, for tests and tools)."""
        return dedup_bucket_key(self.ns, bytes((h[2], h[3] & 0xFE))), bytes(((h[3] & 1) * 8 + (h[0] & 7),))

    def lookup(self, url_id: str, fp: Fingerprint) -> View:
        """The candidates for `fp` at `url_id` (one round trip)."""
        return self.run([self.lookup_call(url_id, fp)])[0]

    def commit(self, view: View, write: Write) -> bool:
        """Record the decision (and XADD its entries) unless the view is stale; False on conflict."""
        return self.run([self.commit_call(view, write)])[0]

    def lookup_call(self, url_id: str, fp: Fingerprint) -> Call:
        """`lookup` as a call for `run`: its reply parses to a `View`."""
        key = self.url_key(url_id)
        query = packed(fp.hashes[:QUERY_HASHES])

        def view(reply: Any) -> View:
            digest, url_sid, sids, recs, epoch = reply
            stories = tuple(Story.unpack(sid.hex(), rec) for sid, rec in zip(sids, recs, strict=True))
            return View(key, query, digest.decode(), epoch, url_sid.hex() or None, stories)

        return Call(self._lookup, [key], [self.ns, query, MAX_CANDIDATES], view)

    def commit_call(self, view: View, write: Write) -> Call:
        """`commit` as a call for `run`: its reply parses to True (recorded) or False (conflict)."""
        streams, tail = write.keys_and_args(self.window_ms)
        args: list[Any] = [self.ns, view.query, MAX_CANDIDATES, view.digest, view.epoch, *tail]
        return Call(self._commit, [view.url_key, *streams], args, lambda reply: reply[0] == b"ok")

    def run(self, calls: Sequence[Call], meanwhile: Callable[[], object] | None = None) -> list[Any]:
        """Run `calls` in order in one round trip and return their parsed replies.

        `meanwhile` runs after the calls are sent and before their replies are
        read, so the caller's CPU work overlaps Redis running the scripts (a
        script waiting on a reply otherwise leaves this core idle for the
        round trip and the script's run time). Redis runs one connection's
        commands in order, each script atomically: a lookup sent after a
        commit sees that commit. `meanwhile` must not raise: an exception
        from it drops the connection with the replies unread and propagates
        (the engine's fingerprint-ahead keeps its own error for later). A
        script missing from Redis's cache (after a restart or SCRIPT FLUSH)
        is loaded and its call and the ones after it sent again; one that did
        not run changed nothing.
        """
        replies = self._send(calls, meanwhile)
        for i, reply in enumerate(replies):
            if isinstance(reply, redis.exceptions.NoScriptError):
                for script in {id(c.script): c.script for c in calls[i:]}.values():
                    self.r.script_load(script.script)  # the sha is the script's: nothing to update
                replies[i:] = self._send(calls[i:], None)
                break
        out = []
        for call, reply in zip(calls, replies, strict=True):
            if isinstance(reply, Exception):
                raise DedupError(f"dedup script failed: {reply}") from reply
            out.append(call.parse(reply))
        return out

    def _send(self, calls: Sequence[Call], meanwhile: Callable[[], object] | None) -> list[Any]:
        """Send the calls' EVALSHAs together, run `meanwhile`, read the replies (errors as values).

        A broken connection is retried as the client's own commands are (its
        Retry policy): a commit that did run before the connection broke is
        then refused as a conflict and decided again (`url` duplicate), so
        nothing is written twice.
        """
        pool = self.r.connection_pool
        commands = [("EVALSHA", c.script.sha, len(c.keys), *c.keys, *c.args) for c in calls]

        def attempt() -> list[Any]:
            nonlocal meanwhile
            conn.send_packed_command(conn.pack_commands(commands))
            work, meanwhile = meanwhile, None  # once, even if the round trip is retried
            if work is not None:
                work()
            replies: list[Any] = []
            for _ in commands:
                try:
                    replies.append(conn.read_response())
                except redis.ResponseError as exc:
                    replies.append(exc)
            return replies

        try:
            conn = pool.get_connection()
            try:
                replies: list[Any] = conn.retry.call_with_retry(attempt, lambda _err: conn.disconnect())
            except BaseException:
                conn.disconnect()  # replies may be left unread on the socket
                raise
            finally:
                pool.release(conn)
        except redis.RedisError as exc:
            raise DedupError(f"dedup: Redis failed: {exc}") from exc
        return replies

    def load(self, rows: Sequence[LoadRow]) -> None:
        """Record new stories in bulk (pipelined, no lookup): for loading a benchmark or a backfill.

        Writes what a `new` decision writes through the commit's own Lua
        (load.lua), but without a lookup or the digest check, so it is only
        safe when nothing else writes the namespace at the same time.
        """
        pipe = self.r.pipeline(transaction=False)
        for i in range(0, len(rows), LOAD_CHUNK):
            args: list[Any] = [self.ns, self.window_ms, INDEX_MAX_IDS, DECISION_LOG_MAX]
            for row in rows[i : i + LOAD_CHUNK]:
                args += [self.url_key(row.url_id), bytes.fromhex(row.story_id), row.record, row.log, row.hashes]
            self._load(keys=[], args=args, client=pipe)
        try:
            pipe.execute()
        except redis.RedisError as exc:
            raise DedupError(f"dedup bulk load failed: {exc}") from exc

    def log(self, story_id: str) -> list[dict[str, Any]]:
        try:
            raw = self.r.lrange(self.story_key(story_id), 1, -1)
        except redis.RedisError as exc:
            raise DedupError(f"dedup log read failed: {exc}") from exc
        return [unpack_log(story_id, x) for x in raw]

    def story_of_url(self, url_id: str) -> str | None:
        try:
            v = self.r.get(self.url_key(url_id))
        except redis.RedisError as exc:
            raise DedupError(f"dedup read failed: {exc}") from exc
        return v.hex() if isinstance(v, bytes) else None

    def delete_namespace(self, batch: int = 1000) -> int:
        """Delete every key under the namespace (replay cleanup; never used on production keys)."""
        n = 0
        pending: list[bytes] = []
        for key in self.r.scan_iter(match=f"{self.ns}:*", count=batch):
            pending.append(key)
            if len(pending) >= batch:
                n += int(self.r.unlink(*pending))
                pending = []
        if pending:
            n += int(self.r.unlink(*pending))
        return n
