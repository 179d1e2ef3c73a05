"""Learned site furniture against real Redis: the host's table (furniture.lua), the process stage learning
and dropping it with no round trip of its own, and the operator's view (`wire furniture`, `wire explain`)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest
import redis
from click.testing import CliRunner

from tests.support.helpers import test_settings
from tests.support.loopback import XML, Site, SiteServer, static
from tests.support.newsroom import NEWSROOM, html_headers, oldstyle, sitemap
from worker.extract.furniture import KEY_BYTES
from worker.keys import Keys
from worker.models import Candidate, PageRef
from worker.ops.cli import cli
from worker.pipeline import process as process_stage
from worker.pipeline.deps import Deps
from worker.pipeline.discover import discover
from worker.pipeline.fetch import fetch
from worker.pipeline.furniture import KEEP_LINES, MAX_LINES, FurnitureStore, story_signature
from worker.settings import parse_sources

SLUGS = ["dam-spillway-evacuation", "port-strike-talks", "quake-coast-damage", "drought-wheat-prices",
         "quake-markets-alert", "drought-cattle-sales"]
FURNITURE = "Printer-friendly version"


def _key(n: int) -> bytes:
    return n.to_bytes(KEY_BYTES, "big")


def _count(store: FurnitureStore, host: str, story: str, keys: list[bytes], now: float = 1e9) -> None:
    pipe = store.r.pipeline(transaction=False)
    store.record(pipe, host, story, [(k, b"line " + k.hex().encode()) for k in keys], now)
    store.execute(pipe)


@pytest.fixture
def store(r: redis.Redis, prefix: str) -> FurnitureStore:
    return FurnitureStore(r, Keys.for_prefix(prefix))


def test_a_line_counts_once_per_story(store: FurnitureStore) -> None:
    """Pages of one story (its copies and versions) count a line once, however they alternate; a new story
    counts again. Every page counts toward the share."""
    for story in ["aa" * 8, "bb" * 8, "aa" * 8, "bb" * 8, "aa" * 8]:
        _count(store, "h.example", story, [_key(1)])
    t = store.show("h.example")
    assert (t.pages, t.blocks[_key(1)].stories, t.blocks[_key(1)].hits) == (5, 2, 5)
    _count(store, "h.example", "cc" * 8, [_key(1), _key(2)])
    t = store.show("h.example")
    assert (t.blocks[_key(1)].stories, t.blocks[_key(2)].first, t.blocks[_key(2)].text) == (3, 6, "line " + _key(2).hex())
    assert t.blocks[_key(1)].learned(t.pages) and not t.blocks[_key(2)].learned(t.pages)


def test_a_hosts_table_stays_compact_and_learns_a_redesign(store: FurnitureStore, r: redis.Redis) -> None:
    """Pages of 60 new lines each, with 3 lines on every page: the hash never holds more than MAX_LINES lines
    (Redis keeps it in its compact encoding, about 9 KB) and keeps the recurring lines. After a redesign
    (3 other recurring lines) the new ones are learned from the third page on, and the old ones leave
    within 30 pages."""
    old, new = [_key(1), _key(2), _key(3)], [_key(4), _key(5), _key(6)]

    def page(n: int, recurring: list[bytes]) -> None:
        _count(store, "big.example", f"{n:08x}{0:08x}", recurring + [_key(1000 * n + i) for i in range(60)])
        assert r.hlen(store.keys.furniture("big.example")) <= MAX_LINES + 1

    for n in range(1, 41):
        page(n, old)
    assert r.object("encoding", store.keys.furniture("big.example")) == b"listpack"
    assert 0 < store.size("big.example") <= 10_000
    t = store.show("big.example")
    assert all(t.blocks[k].learned(t.pages) for k in old)
    for n in range(41, 71):
        page(n, new)
        t = store.show("big.example")
        assert all(t.blocks[k].learned(t.pages) for k in new) == (n >= 43)
    assert not set(old) & set(t.blocks)
    assert MAX_LINES > KEEP_LINES


def test_story_signatures_are_four_non_zero_bytes() -> None:
    """A story id's first four bytes tell it apart; zero, which marks an empty slot, is never one."""
    assert story_signature("0123456789abcdef") == bytes.fromhex("01234567")
    assert story_signature("00000000ffffffff") == b"\0\0\0\1"


# ------------------------------------------------------------------ the process stage


@pytest.fixture
def courier() -> Iterator[tuple[SiteServer, Site]]:
    server = SiteServer()
    site = server.add("courier", "127.0.0.51")
    site.routes["/robots.txt"] = (404, {}, "")
    yield server, site
    server.stop()


def _serve(site: Site, pages: dict[str, bytes]) -> None:
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    for path, body in pages.items():
        site.routes[path] = static(body, html_headers("oldstyle"))
    site.routes["/sitemap.xml"] = (200, XML, sitemap(site.base, [(p, now) for p in pages]))


def _deps(site: Site, redis_url: str, prefix: str, client: redis.Redis) -> Deps:
    text = f"sources:\n- name: courier\n  sitemaps: ['{site.base}/sitemap.xml']\n  rate: 50\n"
    return Deps.create(test_settings(redis_url, prefix), parse_sources(text, "t.yaml"), client=client)


def _fetch(deps: Deps) -> list[PageRef]:
    found: list[Candidate] = []
    discover("courier", deps, enqueue=found.extend)
    refs = [fetch(c, deps) for c in sorted(found, key=lambda c: c.url)]
    assert all(isinstance(ref, PageRef) for ref in refs)
    return refs  # type: ignore[return-value]


def _items(r: redis.Redis, deps: Deps) -> dict[str, dict[str, Any]]:
    return {i["url"]: i for i in (json.loads(f[b"data"]) for _, f in r.xrange(deps.keys.items_stream))}


def test_furniture_is_learned_from_three_stories_and_dropped_from_the_pages_after(
        courier: tuple[SiteServer, Site], redis_url: str, prefix: str, r: redis.Redis) -> None:
    """An old-style site whose navigation row, sidebar and "Printer-friendly version" line leak into every
    story: once three pages of different stories were decided, the next pages are published without those
    lines, their story intact, and their decision log says what was dropped."""
    _, site = courier
    deps = _deps(site, redis_url, prefix, r)
    _serve(site, {f"/news/{i}-{slug}.html": oldstyle(NEWSROOM[slug], seed=i) for i, slug in enumerate(SLUGS)})
    for ref in _fetch(deps):
        process_stage.process(ref, deps)
    published = [_items(r, deps)[f"{site.base}/news/{i}-{slug}.html"] for i, slug in enumerate(SLUGS)]
    assert len(published) == 6 and all(i["event"] == "new" for i in published)
    lines = [i["body"].split("\n\n") for i in published]
    assert [FURNITURE in body for body in lines] == [True, True, True, False, False, False]
    for i, body in enumerate(lines[3:], 3):
        story = NEWSROOM[SLUGS[i]]["paragraphs"]
        assert all(p in body for p in story[1:]), SLUGS[i]  # the story's own text, every paragraph of it
    log = deps.dedup.explain(f"{site.base}/news/4-quake-markets-alert.html")
    assert FURNITURE in log[-1]["furniture"]
    assert "furniture" not in deps.dedup.explain(f"{site.base}/news/0-dam-spillway-evacuation.html")[-1]


def test_one_story_at_several_urls_of_a_host_teaches_nothing(
        courier: tuple[SiteServer, Site], redis_url: str, prefix: str, r: redis.Redis) -> None:
    """The same story at five URLs of one host (five pages, one story): neither its paragraphs nor the
    template's lines become furniture; nothing is dropped."""
    _, site = courier
    deps = _deps(site, redis_url, prefix, r)
    _serve(site, {f"/news/dam-{i}.html": oldstyle(NEWSROOM["dam-spillway-evacuation"], seed=i) for i in range(5)})
    for ref in _fetch(deps):
        process_stage.process(ref, deps)
    t = deps.furniture.show(site.address)
    assert t.pages == 5
    assert all(s.stories == 1 for s in t.blocks.values())
    assert not any(s.learned(t.pages) for s in t.blocks.values())
    assert all("furniture" not in e for e in deps.dedup.history(f"{site.base}/news/dam-0.html"))


class _Counting(redis.Connection):
    """Counts the requests it sends: one per command, or per pipeline, or per batch of scripts."""

    sent = 0

    def send_packed_command(self, command: Any, check_health: bool = True) -> None:
        _Counting.sent += 1
        super().send_packed_command(command, check_health)


def test_a_process_batch_learns_and_drops_furniture_without_a_round_trip_of_its_own(
        courier: tuple[SiteServer, Site], redis_url: str, prefix: str, r: redis.Redis) -> None:
    """The batch's pages and their host's table are read in one round trip, each page is decided in one,
    and the batch ends in one that counts the pages' lines too: 3 + pages round trips (dedup's last commit goes
    alone), as without furniture,
    while the second batch's pages come out without the lines the first batch taught."""
    from worker.queue import processing

    _, site = courier
    port = int(redis_url.rsplit(":", 1)[1].split("/")[0])
    counting = redis.Redis(connection_pool=redis.ConnectionPool(connection_class=_Counting, host="127.0.0.1",
                                                                port=port))
    deps = _deps(site, redis_url, prefix, counting)
    _serve(site, {f"/news/{i}-{slug}.html": oldstyle(NEWSROOM[slug], seed=i) for i, slug in enumerate(SLUGS)})
    refs = _fetch(deps)

    def batch(part: list[PageRef]) -> int:
        before = _Counting.sent
        pipe = deps.redis.pipeline(transaction=False)  # as the process task reads its batch
        pipe.mget([ref.page_key for ref in part])
        hosts = process_stage.read_furniture(pipe, part, deps)
        pages, *tables = pipe.execute()
        processing.process_batch(deps, part, pages, time.monotonic(), deps.furniture.templates(hosts, tables))
        return _Counting.sent - before

    batch(refs[:1])  # loads the scripts once
    assert batch(refs[1:3]) == 3 + 2
    assert batch(refs[3:]) == 3 + 3
    bodies = [i["body"] for i in _items(r, deps).values()]
    assert sum(FURNITURE in b for b in bodies) == 3
    counting.close()


def test_counts_survive_redis_losing_the_script(courier: tuple[SiteServer, Site], redis_url: str, prefix: str,
                                                r: redis.Redis) -> None:
    """After SCRIPT FLUSH (as after a Redis restart) a batch's counts are sent again once the scripts are
    loaded: no furniture count is lost, and the real page still resets the host's bot-wall count."""
    _, site = courier
    deps = _deps(site, redis_url, prefix, r)
    _serve(site, {f"/news/{i}-{slug}.html": oldstyle(NEWSROOM[slug], seed=i) for i, slug in enumerate(SLUGS[:2])})
    first, second = _fetch(deps)
    process_stage.process(first, deps)
    host = urlsplit(second.final_url).hostname or ""
    deps.fetcher.politeness.note_page(host, bot_wall=True, fetched_at=second.fetched_at - 1)
    assert r.exists(deps.keys.host_walls(host))
    r.script_flush()
    process_stage.process(second, deps)
    assert deps.furniture.show(site.address).pages == 2
    assert not r.exists(deps.keys.host_walls(host))


# ------------------------------------------------------------------ operators


def test_explain_lists_the_lines_dropped_as_site_furniture(
        courier: tuple[SiteServer, Site], redis_url: str, prefix: str, r: redis.Redis) -> None:
    """`wire explain URL` shows, under the page's decision, each line dropped as the site's furniture."""
    _, site = courier
    deps = _deps(site, redis_url, prefix, r)
    _serve(site, {f"/news/{i}-{slug}.html": oldstyle(NEWSROOM[slug], seed=i) for i, slug in enumerate(SLUGS[:4])})
    for ref in _fetch(deps):
        process_stage.process(ref, deps)
    url = f"{site.base}/news/3-drought-wheat-prices.html"
    out = CliRunner().invoke(cli, ["explain", url, "--redis-url", redis_url], env={"WIRE_KEY_PREFIX": prefix}).output
    assert f"dropped as site furniture: {FURNITURE}" in out
