"""`Dedup`: fingerprint (pure) -> lookup (Redis, read-only) -> decide (pure)
-> commit (Redis: record + publish in one script), retried on conflict.

Rules, in order (first match wins):

1. Same canonical URL (tracking parameters, www., scheme folded): same
   normalised text -> duplicate/url; new non-furniture blocks of >= 10 words,
   or >= 2 lines inserted inside the stored version (see 3) -> update/url;
   otherwise duplicate/url (a trim, a copy-edit, an older version) -- or
   update/url when the text was replaced outright. Short lines count only
   against the page's own stored version, and not when as many stored
   lines left as came (a sidebar of headlines that changes on every
   fetch); against another site's copy only words of prose count.
2. Same normalised text (entities, Unicode form, quotes, dashes, spacing,
   case, paragraph breaks ignored) as a known story -> duplicate/exact. The
   index finds it (an exact copy shares every indexed hash) and the content
   hash in the record confirms it; there is no per-text key. A body with no
   words has no hashes, so it is matched by URL only.
3. Near duplicate: 5-word shingles; the shorter text's shingles contained in
   the longer >= 0.6, or Jaccard >= 0.5 (hard negatives that reuse a lede
   or background paragraphs stay below ~0.47). Candidates: stories sharing
   one of their 6 smallest shingle hashes with the document's 32 smallest
   (store.py); overlap is estimated from the stored bottom-128 sketch
   against the document's full shingle set. Then update
   if the document has >= 20 words in blocks of prose (sentences, not
   headlines, link rows or labels: what one site shows around a wire story
   and another does not) that provably share nothing with the stored
   version, do not read like furniture (credit, copyright, editor's note,
   correction, promotion lines) and do not all follow the stored version's
   last block (a copy cut short makes the full text look grown), or
   >= 2 non-furniture lines
   (paragraphs, however short) inserted between two lines that are adjacent
   in the stored version (its first 96 line hashes are stored: a copy-edit
   replaces a line, a trimmed copy lacks the tail, neither inserts one
   inside), else duplicate/near.
4. Otherwise new.

Short items (one-paragraph briefs, feed teasers: fewer than 30 shingles,
about 34 words, on either side) are matched only by URL, by exact normalised
text, or when near-identical (Jaccard >= 0.8) -- never by containment,
because a teaser is contained in its story and in every different story
that reuses the same lede, so containment cannot tell them apart. A teaser
followed by its full story at another URL therefore yields two `new`
stories; at the same URL the full story is an `update` (rule 1).

Round trips: `submit` takes two (lookup, then commit). `submit_many` takes
one per document, each carrying the previous document's commit and the next
one's lookup, with the same decisions as one `submit` after another (Redis
runs a connection's scripts in order), and fingerprints the document after
that while Redis works. `submit_iter` yields each decision once its commit
has run: an exception part-way (Redis gone, a `publish` callback failing)
is raised at the document it belongs to, with the documents before it
recorded and published (submitted again they are `url` duplicates and
publish nothing) and none after it touched.

Atomicity: the decision, the index update, the decision log and the XADD to
the downstream streams happen in one Lua script (commit.lua), which first
re-verifies that nothing it depends on changed since the lookup. A worker
killed before the script ran left nothing behind: the redelivered task
decides afresh and publishes once. Killed after: the story is recorded and
published, and the redelivered task gets duplicate/url without publishing.
There is no point in between.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import fields
from functools import partial
from typing import Any

import redis

from ..errors import DedupError
from ..keys import DEDUP_WINDOW
from .decide import Thresholds, decide, new_story_id, url_identity
from .fingerprint import Fingerprint, fingerprint
from .models import Decision, Doc
from .record import Story, pack_log
from .store import STORE_HASHES, Call, LoadRow, Store, View, Write, packed

MAX_ATTEMPTS = 20  # conflicts need a racing commit on the same keys; 20 in a row means something is wrong

Publish = Callable[[Decision], Sequence[tuple[str, dict[str, str]]]]


class Dedup:
    def __init__(
        self,
        client: redis.Redis,
        namespace: str,
        *,
        window_seconds: int = DEDUP_WINDOW,
        **thresholds: Any,
    ) -> None:
        known = {f.name for f in fields(Thresholds)}
        unknown = set(thresholds) - known
        if unknown:
            raise TypeError(f"unknown dedup thresholds: {sorted(unknown)}")
        self.thresholds = Thresholds(**thresholds)
        self.store = Store(client, namespace, window_seconds)

    def submit(
        self,
        doc: Doc,
        *,
        now: float,
        publish: Publish | None = None,
        maxlen: int | None = None,
    ) -> Decision:
        """Decide, record and (for new/update) publish `doc`, atomically."""
        return self.submit_many([doc], now=now, publish=publish, maxlen=maxlen)[0]

    def submit_many(
        self,
        docs: Sequence[Doc],
        *,
        now: float | Sequence[float],
        publish: Publish | Sequence[Publish | None] | None = None,
        maxlen: int | None = None,
    ) -> list[Decision]:
        """`submit` each document in turn, with the same decisions, in one round trip per document.

        See `submit_iter`, which this runs to the end.
        """
        return list(self.submit_iter(docs, now=now, publish=publish, maxlen=maxlen))

    def submit_iter(
        self,
        docs: Sequence[Doc],
        *,
        now: float | Sequence[float],
        publish: Publish | Sequence[Publish | None] | None = None,
        maxlen: int | None = None,
    ) -> Iterator[Decision]:
        """Yield each document's decision, in order, once its commit has run.

        Each round trip carries the previous document's commit and then the
        next one's lookup, which Redis runs in that order, so every lookup sees
        the commits of the documents before it, as with one `submit` after
        another; the document after that is fingerprinted while Redis runs
        them. A commit refused as a conflict (another worker wrote what its
        lookup read) throws away the lookup sent behind it and its document
        is looked up again, so the order of decisions is kept. `now` is one
        time for all or one per document; `publish` one callback for all or
        one per document.

        An exception ends the iteration at the document it belongs to: the
        decisions yielded before it are recorded and published, the documents
        from it on are not (the commit of the one before is sent alone first).
        A caller can therefore set the failing document aside and submit the
        rest again.
        """
        times = [float(now)] * len(docs) if isinstance(now, int | float) else list(now)
        publishers = list(publish) if isinstance(publish, Sequence) else [publish] * len(docs)
        if len(times) != len(docs) or len(publishers) != len(docs):
            raise ValueError("submit_iter: one time and one publish callback per document, or one for all")
        uids = [url_identity(doc.url) for doc in docs]
        fps: list[Fingerprint | BaseException | None] = [None] * len(docs)
        attempts = [0] * len(docs)

        def fp_of(i: int) -> Fingerprint:
            got = fps[i]
            if got is None:
                got = fps[i] = fingerprint(docs[i].body)
            if isinstance(got, BaseException):
                raise got
            return got

        def fp_ahead(i: int) -> None:
            # while Redis works: a failure (even a signal's exception) belongs to
            # document i, and is raised when i is looked up, not in the middle
            # of reading the replies of the calls before it
            try:
                fp_of(i)
            except BaseException as exc:
                fps[i] = exc

        nxt = 0  # the next document to look up
        held: tuple[int, Decision, Call] | None = None  # decided, its commit not yet sent
        while held is not None or nxt < len(docs):
            calls = [held[2]] if held is not None else []
            looked = nxt if nxt < len(docs) else None
            if looked is not None:
                try:
                    calls.append(self.store.lookup_call(uids[looked], fp_of(looked)))
                except BaseException as exc:
                    if held is None:
                        raise
                    fps[looked] = exc  # raised at its turn, after the held commit has gone alone
                    looked = None
            ahead = nxt + 1
            meanwhile = partial(fp_ahead, ahead) if looked is not None and ahead < len(docs) and fps[ahead] is None \
                else None
            replies = self.store.run(calls, meanwhile)
            if held is not None:
                i, decision, _commit = held
                held = None
                if not replies.pop(0):  # conflict: decide it again before anything after it
                    attempts[i] += 1
                    if attempts[i] >= MAX_ATTEMPTS:
                        raise DedupError(f"dedup: {MAX_ATTEMPTS} conflicting attempts for {docs[i].url!r}")
                    nxt = i
                    continue
                yield decision
            if looked is None:
                if nxt < len(docs):
                    fp_of(nxt)  # raises the error that stopped its lookup
                continue
            view: View = replies.pop(0)
            doc, fp = docs[looked], fp_of(looked)
            decision = decide(uids[looked], fp, view.url_story_id, view.hash_story_id(fp.content_hash), view.stories,
                              self.thresholds)
            write = _write(doc, fp, decision, times[looked], publishers[looked], maxlen)
            held = (looked, decision, self.store.commit_call(view, write))
            nxt = looked + 1

    def load(self, docs: Sequence[Doc], *, now: float) -> None:
        """Record `docs` as new stories in one pipeline, without lookups (benchmarks, backfills only)."""
        self.store.load([load_row(doc, now) for doc in docs])

    def explain(self, url: str) -> list[dict[str, Any]]:
        """Decisions recorded for this canonical URL, oldest first."""
        return [e for e in self.history(url) if e.get("url") == url]

    def history(self, url: str) -> list[dict[str, Any]]:
        """Every decision of the story this URL belongs to (versions and aliases), oldest first."""
        sid = self.store.story_of_url(url_identity(url))
        return self.store.log(sid) if sid else []


def _write(doc: Doc, fp: Fingerprint, d: Decision, now: float, publish: Publish | None,
           maxlen: int | None) -> Write:
    """What the commit writes for decision `d`: stream entries and a new record only for new/update."""
    published = d.event in ("new", "update")
    entries = list(publish(d)) if publish is not None and published else []
    stored = Story.of(d.story_id, d.version, doc.url, fp) if published else None
    return Write.of(fp, d, _log_entry(doc, d, now), stored, entries, maxlen)


def load_row(doc: Doc, now: float) -> LoadRow:
    """What `Dedup.load` writes for `doc` as a new story (pure: bulk loaders build rows in parallel)."""
    fp = fingerprint(doc.body)
    uid = url_identity(doc.url)
    sid = new_story_id(uid, fp.content_hash)
    d = Decision("new", sid, 1, None, 0.0, None, "bulk load", fp.content_hash)
    record = Story.of(sid, 1, doc.url, fp).pack()
    return LoadRow(uid, sid, record, pack_log(_log_entry(doc, d, now)), packed(fp.hashes[:STORE_HASHES]))


# lines dropped as site furniture kept in a decision's log entry, each cut to this many characters
LOG_FURNITURE_LINES, LOG_FURNITURE_CHARS = 12, 80


def _log_entry(doc: Doc, d: Decision, now: float) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "time": round(now, 3),
        "url": doc.url,
        "event": d.event,
        "story_id": d.story_id,
        "version": d.version,
        "kind": d.kind,
        "similarity": round(d.similarity, 4),
        "matched_url": d.matched_url,
        "rule": d.rule,
        "content_hash": d.content_hash,
    }
    if doc.furniture:
        entry["furniture"] = [line[:LOG_FURNITURE_CHARS] for line in doc.furniture[:LOG_FURNITURE_LINES]]
    return entry
