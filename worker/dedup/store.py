"""The Redis side of dedup: key layout, the read-only lookup script and the
commit script that records a decision and publishes it atomically.

Keys (all under the namespace, all with a TTL of the window; no sweep job):

    {ns}:u:{url hash}      story id last decided for this canonical URL
    {ns}:h:{content hash}  story id of this normalised body
    {ns}:i:{shingle hash}  story ids (16 hex each, newest 8) whose bottom
                           shingle hashes include this one: the near-duplicate index
    {ns}:s:{story id}      the story's current version (record.Story, binary)
    {ns}:l:{story id}      JSON decision log: every version and alias, for explain

Why two round trips: similarity is computed in Python (numpy), so the
decision cannot be made inside one script. The commit re-reads everything
the lookup read and compares a SHA-1 digest; if another worker recorded
anything that could change this decision in between, it answers `conflict`
and the caller decides again. Two copies of a story racing therefore
serialise on the keys they share, and exactly one of them publishes.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from importlib.resources import files
from typing import Any

import redis

from ..errors import WorkerError
from ..keys import url_hash
from .fingerprint import Fingerprint
from .models import Decision
from .record import Story

QUERY_HASHES = 64  # index keys read per lookup: the document's smallest shingle hashes
STORE_HASHES = 6  # index keys written per new story version: its smallest shingle hashes
INDEX_MAX_IDS = 8  # story ids kept per index key (newest win): bounds hot shingles
MAX_CANDIDATES = 8  # story records fetched per lookup
SID_LEN = 16


class DedupError(WorkerError):
    """Dedup could not record a decision (Redis unreachable, or endless conflicts)."""


def _script(name: str) -> str:
    pkg = files(__package__)
    return pkg.joinpath("gather.lua").read_text() + "\n" + pkg.joinpath(name).read_text()


@dataclass(frozen=True)
class View:
    """What the lookup saw: the keys it read, their digest and the candidate stories."""

    read_keys: tuple[str, ...]
    digest: str
    url_story_id: str | None
    hash_story_id: str | None
    stories: tuple[Story, ...]


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

    # key names
    def url_key(self, url_id: str) -> str:
        return f"{self.ns}:u:{url_hash(url_id)}"

    def hash_key(self, content_hash: str) -> str:
        return f"{self.ns}:h:{content_hash}"

    def index_key(self, h: int) -> str:
        return f"{self.ns}:i:{h:08x}"

    def story_key(self, story_id: str) -> str:
        return f"{self.ns}:s:{story_id}"

    def log_key(self, story_id: str) -> str:
        return f"{self.ns}:l:{story_id}"

    def _read_keys(self, url_id: str, fp: Fingerprint) -> tuple[str, ...]:
        query = fp.hashes[:QUERY_HASHES]
        return (
            self.url_key(url_id),
            self.hash_key(fp.content_hash),
            *(self.index_key(int(h)) for h in query),
        )

    def lookup(self, url_id: str, fp: Fingerprint) -> View:
        keys = self._read_keys(url_id, fp)
        try:
            digest, url_sid, hash_sid, sids, recs = self._lookup(
                keys=keys, args=[self.ns, len(keys) - 2, MAX_CANDIDATES]
            )
        except redis.RedisError as exc:
            raise DedupError(f"dedup lookup failed: {exc}") from exc
        stories = tuple(
            Story.unpack(sid.decode(), rec) for sid, rec in zip(sids, recs, strict=True) if rec is not None
        )
        return View(keys, digest.decode(), url_sid.decode() or None, hash_sid.decode() or None, stories)

    def commit(
        self,
        view: View,
        fp: Fingerprint,
        decision: Decision,
        log_entry: dict[str, Any],
        stored: Story | None,
        entries: Sequence[tuple[str, dict[str, str]]],
        maxlen: int | None,
    ) -> bool:
        """Record `decision` (and XADD `entries`) unless the view is stale; False on conflict."""
        keys = list(view.read_keys)
        ops: list[str | bytes | int] = []

        def slot(key: str) -> int:
            keys.append(key)
            return len(keys)

        sid = decision.story_id
        ops += ["S", 1, sid, "S", 2, sid]
        ops += ["L", slot(self.log_key(sid)), json.dumps(log_entry, sort_keys=True, separators=(",", ":"))]
        story_slot = slot(self.story_key(sid))
        if stored is not None:
            ops += ["S", story_slot, stored.pack()]
            # the first STORE_HASHES of the query keys are this version's smallest hashes
            for i in range(min(STORE_HASHES, len(view.read_keys) - 2)):
                ops += ["A", 3 + i, sid, INDEX_MAX_IDS * SID_LEN]
        else:
            ops += ["E", story_slot]
        for stream, fields in entries:
            ops += ["X", slot(stream), "" if maxlen is None else maxlen, len(fields)]
            for k, v in fields.items():
                ops += [k, v]
        args: list[Any] = [
            self.ns,
            len(view.read_keys) - 2,
            MAX_CANDIDATES,
            view.digest,
            self.window_ms,
            *ops,
        ]
        try:
            reply = self._commit(keys=keys, args=args)
        except redis.RedisError as exc:
            raise DedupError(f"dedup commit failed: {exc}") from exc
        return bool(reply[0] == b"ok")

    def load(self, batch: Sequence[tuple[str, Fingerprint, Story, dict[str, Any]]]) -> None:
        """Record new stories in bulk (pipelined, no lookup): for loading a benchmark or a backfill.

        Writes exactly the keys a `new` decision writes, with the same TTLs,
        but without the digest check, so it is only safe when nothing else
        writes the namespace at the same time.
        """
        pipe = self.r.pipeline(transaction=False)
        px = self.window_ms
        for url_id, fp, story, entry in batch:
            sid = story.story_id
            pipe.set(self.url_key(url_id), sid, px=px)
            pipe.set(self.hash_key(fp.content_hash), sid, px=px)
            pipe.set(self.story_key(sid), story.pack(), px=px)
            pipe.rpush(self.log_key(sid), json.dumps(entry, sort_keys=True, separators=(",", ":")))
            pipe.pexpire(self.log_key(sid), px)
            for h in fp.hashes[:STORE_HASHES]:
                key = self.index_key(int(h))
                pipe.append(key, sid)
                pipe.pexpire(key, px)
        try:
            pipe.execute()
        except redis.RedisError as exc:
            raise DedupError(f"dedup bulk load failed: {exc}") from exc

    def log(self, story_id: str) -> list[dict[str, Any]]:
        try:
            raw = self.r.lrange(self.log_key(story_id), 0, -1)
        except redis.RedisError as exc:
            raise DedupError(f"dedup log read failed: {exc}") from exc
        return [json.loads(x) for x in raw]

    def story_of_url(self, url_id: str) -> str | None:
        try:
            v = self.r.get(self.url_key(url_id))
        except redis.RedisError as exc:
            raise DedupError(f"dedup read failed: {exc}") from exc
        return v.decode() if isinstance(v, bytes) else None

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
