"""worker/trail.py's pure part: events (redacted, compact) and the sentence each one reads as."""

from __future__ import annotations

import json

from worker.trail import ERROR_MAX, describe, event, events_of, pack


def test_an_event_leaves_out_what_is_unknown_and_redacts_urls_and_errors() -> None:
    """None fields are not stored; URLs lose userinfo and secret query values, error texts their credentials."""
    ev = event("fetch", 12.34567, n=1, status=None, final="https://u:pw@h.example/p?api_key=k1&x=2",
               error="GET http://bob:hunter2@h.example/ failed " + "x" * 1000)
    assert ev["t"] == 12.346 and ev["ev"] == "fetch" and "status" not in ev
    assert ev["final"] == "https://***:***@h.example/p?api_key=***&x=2"
    assert "hunter2" not in ev["error"] and len(ev["error"]) == ERROR_MAX
    assert json.loads(pack(ev)) == ev and " " not in pack(event("x", 1.0, a=1, b="c"))


def test_each_kind_reads_as_a_sentence() -> None:
    """The timeline `wire explain` prints: refusals by the guard and by robots.txt are named as such."""
    cases = {
        ("discovered", (("source", "ap"), ("doc", "sitemap"), ("via", "https://h/s.xml"), ("lastmod", "2024"))):
            "discovered by source ap in the sitemap https://h/s.xml (lastmod 2024)",
        ("fetch", (("n", 2), ("status", 200), ("bytes", 12345), ("ms", 80), ("final", "https://h/b"))):
            "fetch #2: HTTP 200 12,345 bytes in 80 ms from https://h/b",
        ("fetch", (("n", 1), ("ms", 3), ("reason", "timeout"), ("error", "read timeout"))):
            "fetch #1: no HTTP answer in 3 ms (timeout: read timeout)",
        ("skipped", (("reason", "private_address"), ("error", "10.0.0.1 is private"))):
            "refused by the address guard (private_address): 10.0.0.1 is private",
        ("skipped", (("reason", "robots_denied"),)): "refused by robots.txt",
        ("skipped", (("stage", "process"), ("reason", "bot_wall"))): "skipped at process: bot_wall",
        ("not_modified", ()): "not modified (304): nothing new to process",
        ("retry", (("reason", "http_503"), ("wait", 2.25))): "retried after 2.2 s (http_503)",
        ("parked", (("reason", "host_paused"), ("until", 0))): "parked until 1970-01-01 00:00:00Z (host_paused)",
        ("dead", (("stage", "fetch"), ("reason", "ValueError"), ("error", "Invalid IPv6 URL"))):
            "dead-lettered at fetch: ValueError: Invalid IPv6 URL (see wire dlq list)",
        ("published", (("story", "ab12"), ("version", 2), ("event", "update"))):
            "published as story ab12 version 2 (update)",
        ("duplicate", (("story", "ab12"), ("version", 1), ("kind", "near"), ("sim", 0.93),
                       ("matched", "https://h/a"))):
            "duplicate of story ab12 version 1 (near, similarity 0.93) ~ https://h/a",
        ("refetch", (("n", 1),)): "the stored page expired before it was processed: fetched again (refetch 1)",
    }
    for (kind, fields), text in cases.items():
        assert describe(event(kind, 0.0, **dict(fields))) == text


def test_stored_events_are_read_in_time_order_skipping_unreadable_ones() -> None:
    """Stages write from different processes, so a trail is ordered by time when read; junk is skipped."""
    raw = [pack(event("fetch", 2.0)).encode(), b"not json", b"[1, 2]", pack(event("discovered", 1.0)).encode()]
    assert [e["ev"] for e in events_of(raw)] == ["discovered", "fetch"]
