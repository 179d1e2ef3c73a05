"""Every URL's trail, written by the pipeline stages against real Redis and a loopback site."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
import redis
from click.testing import CliRunner

from tests.support.faultnet import article_page
from tests.support.helpers import test_settings
from tests.support.loopback import HTML, RSS, Site, SiteServer
from worker.errors import TransientFetchError
from worker.keys import TRAIL_MAX_EVENTS
from worker.models import Candidate, Outcome, PageRef
from worker.ops.cli import cli
from worker.pipeline.deps import Deps
from worker.pipeline.discover import discover
from worker.pipeline.fetch import fetch
from worker.pipeline.process import process
from worker.settings import parse_sources
from worker.trail import describe, event, read

PATHS = ["/one.html", "/copy.html", "/missing.html", "/private/x.html", "/moved.html", "/id?story=7"]


@pytest.fixture
def site() -> Iterator[Site]:
    server = SiteServer()
    s = server.add("t", "127.0.0.42")
    s.routes["/robots.txt"] = (200, {"Content-Type": "text/plain"}, "User-agent: *\nDisallow: /private/\n")
    items = "".join(f"<item><link>{s.base}{p.replace('&', '&amp;')}</link></item>" for p in PATHS)
    s.routes["/feed?api_key=SECRET"] = (200, RSS, f'<rss version="2.0"><channel>{items}</channel></rss>')
    s.routes["/one.html"] = (200, HTML, article_page(501, "Trail Times"))
    s.routes["/copy.html"] = (200, HTML, article_page(501, "Trail Times"))
    s.routes["/private/x.html"] = (200, HTML, article_page(503, "Trail Times"))
    s.routes["/moved.html"] = (301, {"Location": "/new-home.html"}, "")
    s.routes["/new-home.html"] = (200, HTML, article_page(502, "Trail Times"))
    s.routes["/id?story=7"] = (200, HTML, article_page(504, "Trail Times").replace(
        "<head>", f'<head><link rel="canonical" href="{s.base}/canonical-seven.html">'))
    yield s
    server.stop()


def _deps(site: Site, redis_url: str, prefix: str, r: redis.Redis, **settings: object) -> Deps:
    config = parse_sources(f"sources:\n- name: t\n  feeds: ['{site.base}/feed?api_key=SECRET']\n  rate: 50\n",
                           "t.yaml")
    return Deps.create(test_settings(redis_url, prefix, **settings), config, client=r)


@pytest.fixture
def deps(site: Site, redis_url: str, prefix: str, r: redis.Redis) -> Deps:
    return _deps(site, redis_url, prefix, r)


def _drive(deps: Deps) -> dict[str, Outcome]:
    found: list[Candidate] = []
    discover("t", deps, enqueue=found.extend)
    out = {}
    for cand in found:
        for _ in range(3):
            try:
                step = fetch(cand, deps)
                break
            except TransientFetchError:
                continue
        out[cand.url] = process(step, deps) if isinstance(step, PageRef) else step
    return out


def _kinds(deps: Deps, url: str) -> list[str]:
    return [e["ev"] for e in read(deps.redis, deps.keys, url).events]


def test_each_url_has_its_whole_path(deps: Deps, site: Site, r: redis.Redis) -> None:
    """Discovered (source, feed, its URL redacted), each fetch (status, bytes, duration, final URL), and the
    outcome: published as story X version 1, duplicate of X (kind, similarity), skipped (404), refused by
    robots.txt; found again from the URL after redirects and from the page's rel=canonical."""
    outcomes = _drive(deps)
    b = site.base
    assert len(outcomes) == len(PATHS)
    one = read(r, deps.keys, f"{b}/one.html")
    assert one.url == f"{b}/one.html"
    discovered, fetched, published = one.events
    assert discovered["ev"] == "discovered" and discovered["source"] == "t" and discovered["doc"] == "feed"
    assert discovered["via"] == f"{b}/feed?api_key=***"
    assert fetched["ev"] == "fetch" and fetched["status"] == 200 and fetched["bytes"] > 1000
    assert fetched["n"] == 1 and fetched["ms"] >= 0 and "final" not in fetched
    story = outcomes[f"{b}/one.html"].story_id
    assert (published["ev"], published["story"], published["version"], published["event"]) == (
        "published", story, 1, "new")
    assert describe(published) == f"published as story {story} version 1 (new)"

    *_, dup = read(r, deps.keys, f"{b}/copy.html").events
    assert (dup["ev"], dup["story"], dup["kind"], dup["matched"]) == ("duplicate", story, "exact", f"{b}/one.html")
    assert dup["sim"] == 1.0

    assert _kinds(deps, f"{b}/missing.html") == ["discovered", "fetch", "skipped"]
    missing = read(r, deps.keys, f"{b}/missing.html").events
    assert missing[1]["status"] == 404 and missing[2]["reason"] == "not_found"
    assert describe(missing[2]) == "skipped at fetch: not_found"
    assert describe(read(r, deps.keys, f"{b}/private/x.html").events[-1]) == "refused by robots.txt"

    moved = read(r, deps.keys, f"{b}/new-home.html")  # the URL after the redirect finds the trail
    assert moved.url == f"{b}/moved.html" and moved.events[1]["final"] == f"{b}/new-home.html"
    assert moved.events[-1]["ev"] == "published"
    seven = read(r, deps.keys, f"{b}/canonical-seven.html")  # and so does rel=canonical
    assert seven.url == f"{b}/id?story=7" and seven.events[-1]["canonical"] == f"{b}/canonical-seven.html"
    assert read(r, deps.keys, f"{b}/ID?story=7#x").events == []  # another URL altogether

    # bounded: every trail expires with the dedup window; no secret reaches Redis
    keys = list(r.scan_iter(match=f"{deps.keys.prefix}:trail:*"))
    assert keys
    window = int(deps.settings.dedup_window)
    assert all(window - 60 < r.ttl(k) <= window for k in keys)
    assert not any(b"SECRET" in b"".join(r.lrange(k, 0, -1)) for k in keys if r.type(k) == b"list")


def test_a_fetch_the_guard_refuses_says_so(site: Site, redis_url: str, prefix: str, r: redis.Redis) -> None:
    """A URL on an address the guard refuses ends `refused by the address guard` in its trail."""
    deps = _deps(site, redis_url, prefix, r, WIRE_ALLOW_PRIVATE_ADDRESSES="false")
    url = f"{site.base}/one.html"
    outcome = fetch(Candidate(url=url, source="t"), deps)
    assert isinstance(outcome, Outcome) and outcome.reason == "private_address"
    *_, refused = read(r, deps.keys, url).events
    assert describe(refused).startswith("refused by the address guard (private_address)")
    assert [e["ev"] for e in read(r, deps.keys, url).events] == ["fetch", "skipped"]
    assert site.hits.get("/one.html", 0) == 0


def test_a_trail_keeps_its_newest_events(deps: Deps, r: redis.Redis) -> None:
    """A URL's trail holds at most TRAIL_MAX_EVENTS events, the newest, and expires with the window."""
    url = "https://example.org/busy"
    for i in range(TRAIL_MAX_EVENTS + 10):
        pipe = r.pipeline(transaction=False)
        deps.trail.add(pipe, url, event("retry", 1000.0 + i, reason="http_503", wait=1.0))
        pipe.execute()
    events = read(r, deps.keys, url).events
    assert len(events) == TRAIL_MAX_EVENTS and events[0]["t"] == 1010.0
    assert r.ttl(deps.keys.trail(url)) > int(deps.settings.dedup_window) - 60


def test_wire_explain_prints_the_path_and_the_decisions(deps: Deps, site: Site, redis_url: str) -> None:
    """`wire explain` prints a URL's timeline, found from the URL after redirects or rel=canonical too,
    then its dedup decisions; `--json` carries the same events."""
    outcomes = _drive(deps)
    b = site.base
    story = outcomes[f"{b}/one.html"].story_id

    def explain(*args: str) -> str:
        result = CliRunner().invoke(cli, ["explain", *args, "--redis-url", redis_url],
                                    env={"WIRE_KEY_PREFIX": deps.keys.prefix}, catch_exceptions=False)
        assert result.exit_code == 0, result.output
        return result.output

    out = explain(f"{b}/copy.html")
    assert f"path of {b}/copy.html" in out
    assert f"discovered by source t in the feed {b}/feed?api_key=***" in out
    assert "fetch #1: HTTP 200" in out and f"duplicate of story {story} version 1 (exact, similarity 1.0)" in out
    assert "decisions for" in out and "duplicate (exact)" in out
    assert "refused by robots.txt" in explain(f"{b}/private/x.html")
    moved = explain(f"{b}/new-home.html")
    assert f"path of {b}/moved.html" in moved and f"from {b}/new-home.html" in moved and "published as" in moved
    seven = explain(f"{b}/canonical-seven.html")
    assert f"published as {b}/canonical-seven.html as story" in seven and "new" in seven
    doc = json.loads(explain(f"{b}/one.html", "--json"))
    assert [e["ev"] for e in doc["trail"]] == ["discovered", "fetch", "published"]
    assert doc["trail_url"] == f"{b}/one.html" and doc["decisions"][0]["story_id"] == story
    assert "no path recorded" in explain("https://never.example/seen")


def test_a_link_discovery_refuses_has_its_path_too(redis_url: str, prefix: str, r: redis.Redis) -> None:
    """Feed items whose links are malformed or carry a backslash or credentials in the host part are not
    fetched, and not lost from sight either: `wire explain` with the link as the feed gave it says where it
    was found and why it was refused, recorded once however often the feed is read."""
    server = SiteServer()
    site = server.add("t", "127.0.0.43")
    authority = site.base.removeprefix("http://")
    smuggled = f"http://127.0.0.44:8080\\@{authority}/story"
    refused = [smuggled, "http://[::1", f"http://editor:pw@{authority}/locked"]
    items = "".join(f"<item><link>{link}</link></item>" for link in [f"{site.base}/ok", *refused])
    site.routes["/feed"] = (200, RSS, f'<rss version="2.0"><channel>{items}</channel></rss>')
    config = parse_sources(f"sources:\n- name: t\n  feeds: ['{site.base}/feed']\n  rate: 50\n", "t.yaml")
    deps = Deps.create(test_settings(redis_url, prefix), config, client=r)
    try:
        found: list[Candidate] = []
        for _ in range(2):
            discover("t", deps, enqueue=found.extend)
        assert [c.url for c in found] == [f"{site.base}/ok"]  # the smuggled link is not rewritten to the host after @
        for link in refused:
            assert _kinds(deps, link) == ["discovered", "skipped"], link
        result = CliRunner().invoke(cli, ["explain", smuggled, "--redis-url", redis_url],
                                    env={"WIRE_KEY_PREFIX": prefix}, catch_exceptions=False)
        assert result.exit_code == 0, result.output
        assert f"discovered by source t in the feed {site.base}/feed" in result.output
        assert "refused at discovery (bad_url): a backslash or credentials in the host part" in result.output
        locked = describe(read(r, deps.keys, refused[2]).events[-1])
        assert ":pw@" not in locked and "credentials in the host part" in locked, locked
    finally:
        server.stop()
