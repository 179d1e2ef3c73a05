"""The pipeline stages against real Redis and loopback fixture sites, without Celery."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest
import redis

from tests.support.helpers import test_settings
from tests.support.loopback import SiteServer
from tests.support.sites import STORIES, sources_yaml, syndication_sites
from worker.errors import TransientFetchError
from worker.metrics import counter_sum
from worker.models import Candidate, Outcome, PageRef
from worker.pipeline import process as process_stage
from worker.pipeline.deps import Deps
from worker.pipeline.discover import discover
from worker.pipeline.fetch import fetch
from worker.pipeline.process import process
from worker.settings import parse_sources


@pytest.fixture
def sites() -> Iterator[tuple[SiteServer, dict]]:
    server = SiteServer()
    yield server, syndication_sites(server)
    server.stop()


@pytest.fixture
def deps(sites, redis_url: str, prefix: str, r: redis.Redis) -> Deps:
    _, site_map = sites
    text = sources_yaml(site_map).replace("ROUTE_STREAM", f"{prefix}:items:ap")
    config = parse_sources(text, "test-sources.yaml")
    return Deps.create(test_settings(redis_url, prefix), config, client=r)


def fetch_all(deps: Deps, sources: list[str], max_retries: int = 5) -> list[PageRef | Outcome]:
    """Run discover -> fetch synchronously, retrying transient errors at once."""
    queue: list[Candidate] = []
    for name in sources:
        discover(name, deps, enqueue=queue.extend)
    steps: list[PageRef | Outcome] = []
    for cand in queue:
        for attempt in range(max_retries):
            try:
                steps.append(fetch(cand, deps))
                break
            except TransientFetchError:
                if attempt == max_retries - 1:
                    raise
    return steps


def drive(deps: Deps, sources: list[str], max_retries: int = 5) -> list[Outcome]:
    """Run discover -> fetch -> process synchronously, retrying transient errors at once."""
    return [process(step, deps) if isinstance(step, PageRef) else step
            for step in fetch_all(deps, sources, max_retries)]


def items(r: redis.Redis, stream: str) -> list[dict]:
    return [json.loads(f[b"data"]) for _, f in r.xrange(stream)]


def test_syndicated_story_is_published_once(deps: Deps, r: redis.Redis) -> None:
    """Three sites carrying the same AP story yield one `new` item; each other story once too."""
    outcomes = drive(deps, ["alpha", "beta", "gamma"])
    published = items(r, deps.keys.items_stream)
    titles = sorted(i["title"] for i in published)
    assert len(published) == 3, titles
    assert len({i["story_id"] for i in published}) == 3
    assert all(i["event"] == "new" and i["version"] == 1 for i in published)
    statuses = sorted(o.status for o in outcomes)
    assert statuses.count("published") == 3
    assert statuses.count("duplicate") == 3  # AP on beta and gamma, Reuters on beta
    reasons = {o.reason for o in outcomes if o.status == "skipped"}
    assert reasons == {"not_found", "robots_denied"}


def test_item_follows_the_downstream_contract(deps: Deps, r: redis.Redis) -> None:
    """Stream entries carry id/event/story_id/version/data and the item has every SPEC field."""
    drive(deps, ["alpha"])
    entries = r.xrange(deps.keys.items_stream)
    assert entries
    fields = entries[0][1]
    assert set(fields) == {b"id", b"event", b"story_id", b"version", b"data"}
    item = json.loads(fields[b"data"])
    assert fields[b"data"].decode() == json.dumps(item, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    assert set(item) == {"schema_version", "id", "event", "story_id", "version", "url", "canonical_url", "source",
                         "title", "authors", "agency", "dateline", "published_at", "modified_at", "language",
                         "body", "word_count", "content_hash", "fetched_at"}
    assert item["schema_version"] == 1
    assert "utm_source" not in item["canonical_url"]
    ap = next(i for i in items(r, deps.keys.items_stream) if "Taliban" in (i["title"] or ""))
    assert ap["agency"] == "AP"
    assert ap["title"] == "Taliban wins close consulates; Tajikistan reinforces border"
    assert "Leave a Reply" not in ap["body"] and "+ posts" not in ap["body"]
    assert ap["body"].endswith("contributed to this report.")


def test_routes_copy_matching_items_to_extra_streams(deps: Deps, r: redis.Redis, prefix: str) -> None:
    """An AP item goes to the main stream and to the AP route's stream."""
    drive(deps, ["alpha"])
    routed = items(r, f"{prefix}:items:ap")
    assert [i["agency"] for i in routed] == ["AP"]


def test_rediscovery_skips_seen_urls(deps: Deps) -> None:
    """A second discovery of an unchanged feed enqueues nothing."""
    first: list[Candidate] = []
    discover("alpha", deps, enqueue=first.extend)
    again: list[Candidate] = []
    discover("alpha", deps, enqueue=again.extend)
    assert len(first) == 4 and again == []


def test_refetch_is_conditional_and_unchanged_page_publishes_nothing(deps: Deps, r: redis.Redis,
                                                                     sites) -> None:
    """After a page is processed, a re-fetch sends its validators; a 304 costs nothing."""
    server, site_map = sites
    beta = site_map["beta"]
    path = "/world/harbor-bridge-reopens"
    body = beta.routes[path][2]

    def with_etag(count: int, headers: dict[str, str]):
        if headers.get("If-None-Match") == '"v1"':
            return 304, {"ETag": '"v1"'}, b""
        return 200, {"Content-Type": "text/html", "ETag": '"v1"'}, body

    beta.routes[path] = with_etag
    drive(deps, ["beta"])
    cand = Candidate(url=f"{beta.base}{path}", source="beta")
    outcome = fetch(cand, deps)
    assert isinstance(outcome, Outcome) and outcome.status == "not_modified"
    assert server.requests("beta", path)[-1].headers.get("If-None-Match") == '"v1"'


def test_metrics_count_every_page(deps: Deps, r: redis.Redis) -> None:
    """Published, duplicate and skipped pages all show up in the Redis-backed counters."""
    drive(deps, ["alpha", "beta", "gamma"])
    key = deps.keys.metrics()
    assert counter_sum(r, key, "wire_items_published_total") == 3
    assert counter_sum(r, key, "wire_duplicates_total") == 3
    assert counter_sum(r, key, "wire_robots_denied_total", source="alpha") == 1
    assert counter_sum(r, key, "wire_pages_fetched_total", source="alpha", status="404") == 1
    # the extracting thread's CPU time: some, and no more than the wall time extraction took
    cpu = counter_sum(r, key, "wire_extract_cpu_seconds_total")
    wall = counter_sum(r, key, "wire_extract_seconds_sum")
    assert 0 < cpu <= wall * 1.05 + 0.01


class _Injected(Exception):
    pass


def test_process_batch_dead_letters_only_the_pages_that_fail(deps: Deps, r: redis.Redis,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """One process task's batch: a page whose extraction fails and one whose publishing fails
    (bugs injected for those two URLs) are dead-lettered with the error and keep their bytes;
    the other pages of the batch are decided together, published once and cleaned up. Replayed
    without the bugs, the two end as they would have: nothing is lost or published twice."""
    from worker.queue import processing, tasks

    refs = [s for s in fetch_all(deps, ["alpha", "beta", "gamma"]) if isinstance(s, PageRef)]
    assert len(refs) == 6
    broken_extract = next(f.url for f in refs if "afghan-consulates" in f.url)  # gamma's AP copy
    broken_publish = next(f.url for f in refs if "frost" in f.url)  # gamma's own story
    real_extract, real_build = process_stage.extract, process_stage.build_item

    def extract(html: bytes, url: str, **kw):
        if "afghan-consulates" in url:
            raise _Injected("extract")
        return real_extract(html, url, **kw)

    def build_item(article, **kw):
        if kw["url"] == broken_publish:
            raise _Injected("publish")
        return real_build(article, **kw)

    monkeypatch.setattr(tasks, "_deps", deps)
    monkeypatch.setattr(process_stage, "extract", extract)
    monkeypatch.setattr(process_stage, "build_item", build_item)
    pages = r.mget([f.page_key for f in refs])
    processing.process_batch(deps, refs, pages, time.monotonic())

    published = items(r, deps.keys.items_stream)
    assert sorted(i["title"] for i in published) == sorted([STORIES["taliban-consulates"]["title"],
                                                             STORIES["harbor-bridge-reopens"]["title"]])
    dead = {f[b"url"].decode(): f for _, f in r.xrange(deps.keys.dead_stream)}
    assert set(dead) == {broken_extract, broken_publish}
    assert all(f[b"stage"] == b"process" and f[b"reason"] == b"_Injected" for f in dead.values())
    kept = [bool(r.exists(f.page_key)) for f in refs]
    assert kept == [f.url in dead for f in refs]  # bytes kept for the dead letters only
    stats = {k.decode(): int(v) for k, v in r.hgetall(deps.keys.stats()).items()}
    assert (stats.get("published"), stats.get("duplicates")) == (2, 2)

    monkeypatch.setattr(process_stage, "extract", real_extract)
    monkeypatch.setattr(process_stage, "build_item", real_build)
    again = [f for f in refs if f.url in dead]
    processing.process_batch(deps, again, r.mget([f.page_key for f in again]), time.monotonic())
    published = items(r, deps.keys.items_stream)
    assert len(published) == 3 and len({i["story_id"] for i in published}) == 3
    assert counter_sum(r, deps.keys.metrics(), "wire_items_published_total") == 3
    assert counter_sum(r, deps.keys.metrics(), "wire_duplicates_total") == 3


def test_newest_first_feed_publishes_the_newest_version_and_drops_the_older(sites, redis_url: str, prefix: str,
                                                                           r: redis.Redis) -> None:
    """A feed listing a story's updated version (two paragraphs more, another URL) above its first version:
    entries are taken in feed order, so the newest is published as `new` and the older one, contained in it,
    is recorded as a duplicate of it, not published."""
    from tests.support.loopback import HTML, RSS
    from tests.support.sites import jsonld_page, rss

    server, _ = sites
    first = STORIES["harbor-bridge-reopens"]
    newest = {**first, "title": first["title"] + ", officials say",
              "paragraphs": first["paragraphs"] + [
                  "Late on Tuesday the transport ministry said the western span would stay closed to lorries "
                  "until inspectors had checked every bearing, a task it expects to take about three weeks.",
                  "Shipping companies welcomed the reopening but warned that a backlog of containers waiting at "
                  "the northern terminal could take until the end of the month to clear."]}
    delta = server.add("delta", "127.0.0.5")
    old_path, new_path = f"/2021/07/06/{first['slug']}/", f"/2021/07/07/{first['slug']}-updated/"
    delta.routes.update({
        "/robots.txt": (404, {"Content-Type": "text/plain"}, ""),
        "/feed/": (200, RSS, rss(delta.base, [(newest["title"], new_path), (first["title"], old_path)])),
        new_path: (200, HTML, jsonld_page(newest, delta.base)),
        old_path: (200, HTML, jsonld_page(first, delta.base)),
    })
    config = parse_sources(f"sources:\n- name: delta\n  feeds: ['{delta.base}/feed/']\n", "test-sources.yaml")
    deps = Deps.create(test_settings(redis_url, prefix), config, client=r)
    outcomes = drive(deps, ["delta"])
    assert [(o.status, o.event) for o in outcomes] == [("published", "new"), ("duplicate", "duplicate")]
    assert outcomes[1].story_id == outcomes[0].story_id
    published = items(r, deps.keys.items_stream)
    assert [(i["event"], i["version"], i["url"]) for i in published] == [("new", 1, f"{delta.base}{new_path}")]
