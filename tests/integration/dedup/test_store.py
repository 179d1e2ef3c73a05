"""Integration tests of the Redis-backed Dedup against the private test Redis."""

from __future__ import annotations

import multiprocessing as mp
from collections.abc import Callable, Sequence

import pytest
import redis

from worker.dedup import Decision, Dedup, Doc

BODY = (
    "KABUL, Afghanistan (AP) — The council met on Tuesday to discuss the new water plan for the city.\n\n"
    "Officials said the plan would cost more than 40 million dollars over five years and serve 200,000 people.\n\n"
    "Critics said the money would be better spent on repairing the existing network of pipes and pumps."
)


def publisher(stream: str) -> Callable[[Decision], Sequence[tuple[str, dict[str, str]]]]:
    def publish(d: Decision) -> Sequence[tuple[str, dict[str, str]]]:
        return [(stream, {"event": d.event, "story_id": d.story_id, "version": str(d.version)})]

    return publish


@pytest.fixture
def dedup(r: redis.Redis, prefix: str) -> Dedup:
    return Dedup(r, f"{prefix}:dedup")


def test_first_copy_is_new_and_published(dedup: Dedup, r: redis.Redis, prefix: str) -> None:
    """A story never seen is `new`, version 1, and its entry is in the stream."""
    d = dedup.submit(Doc("https://a.example/s", "T", BODY), now=1.0, publish=publisher(f"{prefix}:items"))
    assert (d.event, d.version, d.kind, d.similarity) == ("new", 1, None, 0.0)
    assert r.xlen(f"{prefix}:items") == 1


def test_redelivery_is_url_duplicate_and_not_published(dedup: Dedup, r: redis.Redis, prefix: str) -> None:
    """The same input submitted twice (a redelivered task) is a `url` duplicate and publishes nothing."""
    pub = publisher(f"{prefix}:items")
    first = dedup.submit(Doc("https://a.example/s", "T", BODY), now=1.0, publish=pub)
    again = dedup.submit(Doc("https://a.example/s", "T", BODY), now=2.0, publish=pub)
    assert (again.event, again.kind, again.story_id, again.version) == ("duplicate", "url", first.story_id, 1)
    assert r.xlen(f"{prefix}:items") == 1


def test_same_text_elsewhere_is_exact_duplicate(dedup: Dedup) -> None:
    """The same body with other typography on another site is an `exact` duplicate of the story."""
    first = dedup.submit(Doc("https://a.example/s", "T", BODY), now=1.0)
    retyped = BODY.replace("—", "--").replace("\n\n", "\n").upper()
    d = dedup.submit(Doc("https://b.example/other", "T2", retyped), now=2.0)
    assert (d.event, d.kind, d.story_id, d.similarity) == ("duplicate", "exact", first.story_id, 1.0)
    assert d.matched_url == "https://a.example/s"


def test_tracking_parameters_do_not_hide_the_url(dedup: Dedup) -> None:
    """The URL identity folds tracking parameters and www., so a re-fetch with utm_ is still `url`."""
    dedup.submit(Doc("https://www.a.example/s", "T", BODY), now=1.0)
    d = dedup.submit(Doc("https://a.example/s?utm_source=x", "T", BODY), now=2.0)
    assert (d.event, d.kind) == ("duplicate", "url")


def test_all_keys_expire_with_the_window(r: redis.Redis, prefix: str) -> None:
    """Every dedup key carries a TTL no longer than the window (no sweep job needed)."""
    dd = Dedup(r, f"{prefix}:dedup", window_seconds=3600)
    dd.submit(Doc("https://a.example/s", "T", BODY), now=1.0)
    dd.submit(Doc("https://b.example/s", "T", BODY), now=2.0)
    keys = list(r.scan_iter(match=f"{prefix}:dedup:*"))
    assert keys
    for k in keys:
        assert 0 < r.ttl(k) <= 3600, k


def test_expired_index_entries_are_dropped_by_the_next_write_to_their_field(r: redis.Redis, prefix: str) -> None:
    """Index entries older than the window go when their field is next written (no sweep job)."""
    from worker.dedup.fingerprint import fingerprint
    from worker.dedup.store import STORE_HASHES, packed

    dd = Dedup(r, f"{prefix}:dedup", window_seconds=3600)
    first = dd.submit(Doc("https://a.example/s", "T", BODY), now=1.0)
    index = packed(fingerprint(BODY).hashes[:STORE_HASHES])
    fields = [dd.store.bucket_of(index[i : i + 4]) for i in range(0, len(index), 4)]
    old_stamp = (0).to_bytes(4, "big")  # minute 0: far older than the window
    for key, field in fields:
        v = r.hget(key, field)
        assert v is not None and bytes.fromhex(first.story_id) in v
        aged = b"".join(v[i : i + 12] + old_stamp for i in range(0, len(v), 16))
        r.hset(key, field, aged)
    # a copy at another URL indexes the same hashes, so it writes the same fields
    dd.load([Doc("https://b.example/s", "T", BODY)], now=2.0)
    for key, field in fields:
        v = r.hget(key, field)
        assert v is not None and len(v) % 16 == 0
        assert bytes.fromhex(first.story_id) not in v  # the aged entry is gone
        assert all(v[i + 12 : i + 16] != old_stamp for i in range(0, len(v), 16))


def test_explain_lists_decisions_for_the_url(dedup: Dedup) -> None:
    """explain(url) returns that URL's decisions oldest first; history includes the story's aliases."""
    dedup.submit(Doc("https://a.example/s", "T", BODY), now=1.0)
    dedup.submit(Doc("https://b.example/s", "T", BODY), now=2.0)
    dedup.submit(Doc("https://a.example/s", "T", BODY), now=3.0)
    got = dedup.explain("https://a.example/s")
    assert [(e["event"], e["time"]) for e in got] == [("new", 1.0), ("duplicate", 3.0)]
    assert {e["url"] for e in dedup.history("https://a.example/s")} == {
        "https://a.example/s",
        "https://b.example/s",
    }


def test_decode_responses_client_is_accepted(redis_url: str, prefix: str) -> None:
    """A client created with decode_responses=True still works (dedup opens a binary pool)."""
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    dd = Dedup(client, f"{prefix}:dedup")
    assert dd.submit(Doc("https://a.example/s", "T", BODY), now=1.0).event == "new"
    assert dd.submit(Doc("https://a.example/s", "T", BODY), now=2.0).event == "duplicate"


def _story(i: int) -> str:
    return "\n\n".join(
        f"Story {i} paragraph {p}: the committee number {i * 7 + p} voted on measure {i}-{p} today "
        f"while observers counted {p * 13 + i} ballots in district {i % 17}."
        for p in range(4)
    )


def _racer(url: str, ns: str, stream: str, copy: int, barrier: object, batch: int) -> None:
    client = redis.Redis.from_url(url)
    dd = Dedup(client, ns)
    barrier.wait()  # type: ignore[attr-defined]
    docs = [Doc(f"https://site{copy}.example/story-{i}", f"Story {i}", _story(i)) for i in range(50)]
    for start in range(0, 50, batch):
        chunk = docs[start : start + batch]
        dd.submit_many(chunk, now=[100.0 + start + j for j in range(len(chunk))], publish=publisher(stream))


@pytest.mark.parametrize("batch", [1, 10], ids=["submit", "submit_many"])
def test_eight_processes_racing_publish_each_story_once(
    redis_url: str, r: redis.Redis, prefix: str, batch: int
) -> None:
    """8 processes submit copies of the same 50 stories at once: exactly 50 `new` entries are published.

    With batches, each process's commits and lookups share round trips, so a
    commit refused as a conflict has a lookup queued behind it that must be
    thrown away and redone.
    """
    ctx = mp.get_context("spawn")
    barrier = ctx.Barrier(8)
    stream = f"{prefix}:items"
    procs = [
        ctx.Process(target=_racer, args=(redis_url, f"{prefix}:dedup", stream, c, barrier, batch)) for c in range(8)
    ]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    events = [fields[b"event"] for _id, fields in r.xrange(stream)]
    assert events.count(b"new") == 50
    assert len(events) == 50
    sids = {fields[b"story_id"] for _id, fields in r.xrange(stream)}
    assert len(sids) == 50


def test_crash_before_commit_decides_afresh(dedup: Dedup, r: redis.Redis, prefix: str) -> None:
    """A worker that dies before its commit script ran left nothing; the resubmission is `new` and publishes once."""
    stream = f"{prefix}:items"

    def dying(_: Decision) -> Sequence[tuple[str, dict[str, str]]]:
        raise SystemExit("worker killed between decision and commit")

    with pytest.raises(SystemExit):
        dedup.submit(Doc("https://a.example/s", "T", BODY), now=1.0, publish=dying)
    assert r.exists(stream) == 0 and not list(r.scan_iter(match=f"{prefix}:dedup:*"))
    d = dedup.submit(Doc("https://a.example/s", "T", BODY), now=2.0, publish=publisher(stream))
    assert d.event == "new" and r.xlen(stream) == 1


def test_crash_after_commit_redelivery_publishes_nothing(dedup: Dedup, r: redis.Redis, prefix: str) -> None:
    """After a committed (so published) decision, a redelivered task gets `duplicate` and no second entry."""
    stream = f"{prefix}:items"
    dedup.submit(Doc("https://a.example/s", "T", BODY), now=1.0, publish=publisher(stream))
    again = dedup.submit(Doc("https://a.example/s", "T", BODY), now=5.0, publish=publisher(stream))
    assert again.event == "duplicate" and r.xlen(stream) == 1


def test_maxlen_trims_the_stream_approximately(dedup: Dedup, r: redis.Redis, prefix: str) -> None:
    """XADD uses MAXLEN ~ when given, so the stream stays near the bound."""
    stream = f"{prefix}:items"
    for i in range(300):
        dedup.submit(
            Doc(f"https://a.example/{i}", "T", _story(i)), now=float(i), publish=publisher(stream), maxlen=100
        )
    assert r.xlen(stream) < 300


LONG = "\n\n".join(
    f"Paragraph {p} of the council story: members argued about budget line {p * 3} and the reserve fund "
    f"for {p + 2} hours before the chair called a vote on amendment {p}."
    for p in range(8)
)
NEW_PARAS = (
    "The mayor later said the vote would be repeated next month because two members were absent and the "
    "quorum rules had not been met.\n\n"
    "Residents who attended the meeting complained that the public comment period was cut short."
)


def test_grown_text_at_same_url_is_update_and_published(dedup: Dedup, r: redis.Redis, prefix: str) -> None:
    """A re-fetch whose text grew by new paragraphs is `update` version 2 and is published."""
    stream = f"{prefix}:items"
    first = dedup.submit(Doc("https://a.example/c", "T", LONG), now=1.0, publish=publisher(stream))
    grown = LONG.replace("\n\nParagraph 4", "\n\n" + NEW_PARAS + "\n\nParagraph 4")
    d = dedup.submit(Doc("https://a.example/c", "T", grown), now=2.0, publish=publisher(stream))
    assert (d.event, d.kind, d.version, d.story_id) == ("update", "url", 2, first.story_id)
    assert r.xlen(stream) == 2


def test_short_lines_inserted_in_a_copy_elsewhere_are_an_update(dedup: Dedup) -> None:
    """Two short lines (5 words) inserted inside the story at another URL are `update` version 2: the
    stored record's line hashes, read back from Redis, show them inserted between kept paragraphs."""
    first = dedup.submit(Doc("https://a.example/c", "T", LONG), now=1.0)
    grown = LONG.replace("\n\nParagraph 4", "\n\nAmendment 3 passed\n\n$674.00\n\nParagraph 4")
    d = dedup.submit(Doc("https://b.example/mirror", "T", grown), now=2.0)
    assert (d.event, d.kind, d.version, d.story_id) == ("update", "near", 2, first.story_id)
    assert d.rule.endswith("2 added lines")


def test_near_copy_with_credit_line_is_near_duplicate(dedup: Dedup) -> None:
    """Another site's copy with a new headline and a credit line appended is a `near` duplicate."""
    first = dedup.submit(Doc("https://a.example/c", "T", LONG), now=1.0)
    copy = LONG + "\n\nAssociated Press writer Jane Doe contributed to this report."
    d = dedup.submit(Doc("https://b.example/other", "Other", copy), now=2.0)
    assert (d.event, d.kind, d.story_id) == ("duplicate", "near", first.story_id)


def test_shared_lede_different_story_is_new(dedup: Dedup) -> None:
    """A different story that reuses the first paragraph is not merged."""
    dedup.submit(Doc("https://a.example/c", "T", LONG), now=1.0)
    other = (
        LONG.split("\n\n")[0]
        + "\n\n"
        + "\n\n".join(
            f"Unrelated paragraph {p}: the zoo welcomed {p + 1} penguins flown in from a partner park in March."
            for p in range(8)
        )
    )
    assert dedup.submit(Doc("https://b.example/zoo", "Zoo", other), now=2.0).event == "new"


OTHER = (
    "LIMA, Peru (AP) — Fishermen blocked the port on Monday over a new quota on anchovy catches.\n\n"
    "The ministry said the quota protects stocks after two warm years cut the catch by a third.\n\n"
    "Union leaders said thousands of crews would lose their income before the season closes in June."
)


def _decide(dedup: Dedup, doc: Doc) -> tuple[Decision, Callable[[], bool]]:
    """One submit split at its seam: lookup and decide now; the returned callable commits later."""
    from worker.dedup.decide import decide
    from worker.dedup.engine import url_identity
    from worker.dedup.fingerprint import fingerprint
    from worker.dedup.record import Story
    from worker.dedup.store import Write

    fp = fingerprint(doc.body)
    uid = url_identity(doc.url)
    view = dedup.store.lookup(uid, fp)
    d = decide(uid, fp, view.url_story_id, view.hash_story_id(fp.content_hash), view.stories, dedup.thresholds)
    stored = Story.of(d.story_id, d.version, doc.url, fp) if d.event in ("new", "update") else None

    def commit() -> bool:
        return dedup.store.commit(view, Write.of(fp, d, {"url": doc.url}, stored, [], None))

    return d, commit


def test_interleaved_copies_conflict_and_the_loser_decides_again(dedup: Dedup) -> None:
    """Two copies looked up before either commits: the second commit sees the first and refuses.

    The epoch fast path must not hide a commit that changed what the lookup read.
    """
    a, b = Doc("https://a.example/s", "T", BODY), Doc("https://b.example/s", "T", BODY)
    da, commit_a = _decide(dedup, a)
    db, commit_b = _decide(dedup, b)
    assert (da.event, db.event) == ("new", "new")  # neither saw the other
    assert commit_a() is True
    assert commit_b() is False  # conflict: b's view no longer holds
    again = dedup.submit(b, now=3.0)
    assert (again.event, again.kind, again.story_id) == ("duplicate", "exact", da.story_id)


def test_an_unrelated_commit_in_between_does_not_conflict(dedup: Dedup) -> None:
    """A commit elsewhere in the index moves the epoch but not the digest: the commit goes through."""
    d, commit = _decide(dedup, Doc("https://a.example/s", "T", BODY))
    assert d.event == "new"
    other = dedup.submit(Doc("https://c.example/x", "L", OTHER), now=2.0)
    assert other.event == "new"
    assert commit() is True
    assert dedup.submit(Doc("https://a.example/s", "T", BODY), now=3.0).event == "duplicate"


def _mixed_docs() -> list[Doc]:
    """Copies, a same-URL growth, a refetch and unrelated stories, interleaved so that a batch
    holds a document and the copy that must see it."""
    grown = BODY + "\n\nThe council will vote on the plan next month after a public hearing on the costs."
    credit = BODY + "\n\nJane Doe contributed to this report."
    return [
        Doc("https://a.example/s", "T", BODY),
        Doc("https://b.example/s", "T", credit),
        Doc("https://c.example/x", "L", OTHER),
        Doc("https://a.example/s", "T", grown),
        Doc("https://a.example/s", "T", grown),
        Doc("https://d.example/s", "T", BODY),
        *[Doc(f"https://e.example/{i}", f"S{i}", _story(i)) for i in range(6)],
        Doc("https://f.example/x", "L", OTHER),
        Doc("https://g.example/3", "S3", _story(3)),
    ]


def test_submit_many_decides_as_one_submit_after_another(r: redis.Redis, prefix: str) -> None:
    """submit_many gives every document the decision, and the stream the entries, that one
    submit after another gives: each lookup runs after the commit before it."""
    docs = _mixed_docs()
    one, many = Dedup(r, f"{prefix}:one"), Dedup(r, f"{prefix}:many")
    singly = [one.submit(d, now=float(i), publish=publisher(f"{prefix}:one-items")) for i, d in enumerate(docs)]
    together = many.submit_many(docs, now=[float(i) for i in range(len(docs))],
                                publish=publisher(f"{prefix}:many-items"))

    def key(d: Decision) -> tuple[object, ...]:
        return (d.event, d.kind, d.story_id, d.version, d.matched_url, d.rule)

    assert [key(d) for d in together] == [key(d) for d in singly]
    assert [d.event for d in together][:6] == ["new", "duplicate", "new", "update", "duplicate", "duplicate"]
    assert [f for _id, f in r.xrange(f"{prefix}:many-items")] == [f for _id, f in r.xrange(f"{prefix}:one-items")]
    assert many.explain("https://a.example/s") == one.explain("https://a.example/s")


def test_submit_many_loads_scripts_redis_lost(r: redis.Redis, prefix: str) -> None:
    """After Redis lost its script cache (a restart, SCRIPT FLUSH) the calls are sent again
    after loading the scripts: nothing fails and nothing is written twice."""
    dd = Dedup(r, f"{prefix}:dedup")
    stream = f"{prefix}:items"
    first = dd.submit_many(_mixed_docs()[:3], now=1.0, publish=publisher(stream))
    r.script_flush()  # this test's own throwaway server
    again = dd.submit_many(_mixed_docs(), now=2.0, publish=publisher(stream))
    assert [d.event for d in first] == ["new", "duplicate", "new"]
    assert [(d.event, d.kind) for d in again[:3]] == [("duplicate", "url")] * 3
    assert r.xlen(stream) == sum(d.event != "duplicate" for d in first + again)


class _Broken(Exception):
    pass


@pytest.mark.parametrize("bad", [0, 1, 4])
def test_submit_iter_raises_at_the_document_a_failing_fingerprint_belongs_to(
        r: redis.Redis, prefix: str, monkeypatch: pytest.MonkeyPatch, bad: int) -> None:
    """A fingerprint that fails (here: injected for one body; it runs ahead, while Redis works on
    the document before) is raised after every document before it is decided, recorded and
    published, and before anything of it or after it is written."""
    from worker.dedup import engine

    docs = [Doc(f"https://e.example/{i}", f"S{i}", _story(i)) for i in range(6)]
    real = engine.fingerprint

    def fingerprint(body: str) -> engine.Fingerprint:
        if body == docs[bad].body:
            raise _Broken(bad)
        return real(body)

    monkeypatch.setattr(engine, "fingerprint", fingerprint)
    dd, stream = Dedup(r, f"{prefix}:dedup"), f"{prefix}:items"
    got: list[Decision] = []
    with pytest.raises(_Broken):
        for d in dd.submit_iter(docs, now=1.0, publish=publisher(stream)):
            got.append(d)
    assert [d.event for d in got] == ["new"] * bad
    assert r.xlen(stream) == bad
    assert all(dd.explain(doc.url) == [] for doc in docs[bad:])
    monkeypatch.setattr(engine, "fingerprint", real)
    rest = dd.submit_many(docs, now=2.0, publish=publisher(stream))  # the same documents again
    assert [(d.event, d.kind) for d in rest] == [("duplicate", "url")] * bad + [("new", None)] * (6 - bad)


def test_submit_iter_raises_at_the_document_whose_publish_fails(r: redis.Redis, prefix: str) -> None:
    """A publish callback failing for one document (one callback per document) stops the
    iteration there: the documents before it are published once, it and those after are not."""
    docs = [Doc(f"https://e.example/{i}", f"S{i}", _story(i)) for i in range(5)]
    stream = f"{prefix}:items"

    def failing(d: Decision) -> Sequence[tuple[str, dict[str, str]]]:
        raise _Broken("publish")

    pubs = [publisher(stream)] * 5
    pubs[2] = failing
    dd = Dedup(r, f"{prefix}:dedup")
    it = dd.submit_iter(docs, now=1.0, publish=pubs)
    assert [next(it).event, next(it).event] == ["new", "new"]
    with pytest.raises(_Broken):
        next(it)
    assert r.xlen(stream) == 2
    assert dd.explain(docs[2].url) == [] and dd.explain(docs[3].url) == []
    with pytest.raises(ValueError, match="one time and one publish"):
        dd.submit_many(docs, now=1.0, publish=pubs[:3])


def test_a_story_decision_log_keeps_its_newest_decisions(dedup: Dedup, r: redis.Redis, prefix: str,
                                                         redis_url: str) -> None:
    """A replay loop decides the same page 150 times: the story's list holds its record, a count of the
    decisions dropped and the newest DECISION_LOG_MAX decisions (on main it grew by one entry per
    decision, without end); the stored version is untouched and `wire explain` says what was dropped."""
    from click.testing import CliRunner

    from worker.keys import DECISION_LOG_MAX
    from worker.ops.cli import cli

    doc = Doc("https://a.example/loop", "T", BODY)
    first = dedup.submit(doc, now=1.0)
    for i in range(149):
        dedup.submit(doc, now=2.0 + i)
    key = dedup.store.story_key(first.story_id)
    assert r.llen(key) == 1 + 1 + DECISION_LOG_MAX
    log = dedup.history(doc.url)
    assert log[0] == {"event": "dropped", "dropped": 150 - DECISION_LOG_MAX, "story_id": first.story_id}
    assert [e["time"] for e in log[1:]] == [2.0 + i for i in range(149 - DECISION_LOG_MAX, 149)]
    assert dedup.submit(doc, now=500.0).event == "duplicate"  # the record at index 0 is intact
    assert dedup.history(doc.url)[0]["dropped"] == 151 - DECISION_LOG_MAX
    assert r.ttl(key) > 0
    out = CliRunner().invoke(cli, ["explain", doc.url, "--redis-url", redis_url],
                             env={"WIRE_KEY_PREFIX": prefix}).output
    assert f"... {151 - DECISION_LOG_MAX} earlier decision(s) dropped: the log keeps the newest" in out
