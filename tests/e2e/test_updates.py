"""Updates are about the story, never the furniture, and none is missed: a real worker and beat
(subprocesses) against real Redis and loopback sites in four templates (tests/support/newsroom.py).

Each site has a sitemap whose `lastmod` says when a page changed; some
sites' pages change on every fetch (a sidebar of headlines), and say so in
their sitemap too, so wire fetches them again and again.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import redis

from tests.support.cluster import Cluster
from tests.support.loopback import XML, Resp, Site, SiteServer, static
from tests.support.newsroom import NEWSROOM, TEMPLATES, html_headers, rss, sitemap
from worker.keys import Keys, as_text

pytestmark = pytest.mark.slow

DAM, PORT = NEWSROOM["dam-spillway-evacuation"], NEWSROOM["port-strike-talks"]


def _stamp(t: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


class Newsroom:
    """Sites in the newsroom templates, each with a sitemap; pages and their lastmod change on demand."""

    def __init__(self, server: SiteServer, first_address: int = 41) -> None:
        self.server = server
        self.next_address = first_address
        self.sites: dict[str, Site] = {}
        self.lastmod: dict[str, dict[str, float | None]] = {}  # site -> path -> lastmod (None: now, always)

    def site(self, name: str) -> Site:
        """The site `name`, created (on the next loopback address) with a robots.txt and a sitemap."""
        if name not in self.sites:
            site = self.server.add(name, f"127.0.0.{self.next_address}")
            self.next_address += 1
            self.sites[name], self.lastmod[name] = site, {}
            site.routes["/robots.txt"] = (404, {}, "")
            site.routes["/sitemap.xml"] = lambda count, req: Resp(200, XML, sitemap(site.base, [
                (path, _stamp(time.time() if when is None else when)) for path, when in self.lastmod[name].items()]))
        return self.sites[name]

    def publish(self, name: str, template: str, story: dict[str, Any], path: str, *, updated: bool = False,
                changing: bool = False) -> None:
        """Serve `story` at `path` of site `name` and move its lastmod; `changing`: a new sidebar on every
        fetch, and a sitemap lastmod that says so."""
        site = self.site(name)
        render = TEMPLATES[template]
        if changing:
            site.routes[path] = lambda count, req: Resp(200, html_headers(template),
                                                        render(story, seed=count, updated=updated))
        else:
            site.routes[path] = static(render(story, updated=updated), html_headers(template), modified=time.time())
        self.lastmod[name][path] = None if changing else time.time()

    def sources(self) -> str:
        out = "defaults:\n  interval: 2s\n  rate: 20\nsources:\n"
        for name, site in self.sites.items():
            out += f"  - name: {name}\n    sitemaps: ['{site.base}/sitemap.xml']\n"
        return out

    def rounds(self) -> int:
        """Discovery rounds every site has seen (its sitemap read), the fewest of them."""
        return min(len(self.server.requests(name, "/sitemap.xml")) for name in self.sites)


def _stats(client: redis.Redis, keys: Keys) -> dict[str, int]:
    return {as_text(k): int(float(v)) for k, v in client.hgetall(keys.stats()).items()}


def _settled(client: redis.Redis, keys: Keys, at_least: int) -> bool:
    """Every URL discovered so far has an outcome, and at least `at_least` pages were decided."""
    s = _stats(client, keys)
    decided = s.get("published", 0) + s.get("duplicates", 0)
    ended = decided + s.get("skipped", 0) + s.get("not_modified", 0) + s.get("failed", 0)
    return decided >= at_least and ended >= s.get("discovered", 0)


def _items(client: redis.Redis, keys: Keys) -> list[dict[str, Any]]:
    return [json.loads(f[b"data"]) for _, f in client.xrange(keys.items_stream)]


def _events(items: list[dict[str, Any]]) -> list[tuple[str, str, int]]:
    return sorted((i["title"], i["event"], i["version"]) for i in items)


@pytest.fixture
def newsroom(site_server: tuple[SiteServer, dict]) -> Newsroom:
    return Newsroom(site_server[0])


@pytest.fixture
def start(cluster: Cluster, cluster_env: dict[str, str], newsroom: Newsroom) -> Callable[[], None]:
    def go() -> None:
        Path(cluster_env["WIRE_SOURCES"]).write_text(newsroom.sources())
        cluster.start("worker", "worker", "--queues", "discover,fetch,process", "--pool", "threads",
                      "--concurrency", "4")
        cluster.start("beat", "beat")
    return go


def test_one_wire_story_on_four_templates_is_one_new_and_no_update(
        cluster: Cluster, cluster_env: dict[str, str], prefix: str, newsroom: Newsroom,
        start: Callable[[], None]) -> None:
    """The same AP story (and a Reuters one) on four sites with different furniture, one of them an old-style
    table/FONT/BR page whose furniture leaks into the text: one `new` each, no `update`, the other copies
    duplicates of it."""
    client = redis.Redis.from_url(cluster_env["WIRE_REDIS_URL"])
    keys = Keys.for_prefix(prefix)
    for template in TEMPLATES:
        newsroom.publish(template, template, DAM, "/news/dam.html")
        newsroom.publish(template, template, PORT, "/news/port.html")
    start()
    cluster.wait(lambda: _settled(client, keys, 8), timeout=120, what="the eight pages to be decided")
    items = _items(client, keys)
    assert _events(items) == sorted([(DAM["title"], "new", 1), (PORT["title"], "new", 1)])
    stats = _stats(client, keys)
    assert (stats["published"], stats["duplicates"]) == (2, 6), stats


def test_a_sidebar_that_changes_on_every_fetch_is_no_update(
        cluster: Cluster, cluster_env: dict[str, str], prefix: str, newsroom: Newsroom,
        site_server: tuple[SiteServer, dict], start: Callable[[], None]) -> None:
    """Pages whose "Most Popular Stories" sidebar (leaking into the old-style page's text) or inline
    "Trending now" list is different on every fetch, fetched again and again: one `new` each, no `update`."""
    server, _ = site_server
    client = redis.Redis.from_url(cluster_env["WIRE_REDIS_URL"])
    keys = Keys.for_prefix(prefix)
    newsroom.publish("oldstyle", "oldstyle", DAM, "/news/dam.html", changing=True)
    newsroom.publish("trending", "trending", PORT, "/news/port.html", changing=True)
    start()

    def fetched_often() -> bool:
        old = [r for r in server.requests("oldstyle", "/news/dam.html") if r.status == 200]
        trend = [r for r in server.requests("trending", "/news/port.html") if r.status == 200]
        return len(old) >= 5 and len(trend) >= 5 and _settled(client, keys, len(old) + len(trend))

    cluster.wait(fetched_often, timeout=120, what="each page fetched and decided five times")
    items = _items(client, keys)
    assert _events(items) == sorted([(DAM["title"], "new", 1), (PORT["title"], "new", 1)])


def test_two_paragraphs_added_at_one_site_are_exactly_one_update(
        cluster: Cluster, cluster_env: dict[str, str], prefix: str, newsroom: Newsroom,
        start: Callable[[], None]) -> None:
    """A story grows by two paragraphs at one site: one `update` (version 2), and none more when the other
    sites carry the grown story too. Also when the story's only earlier copy sat on the old-style site
    (the port story), the grown copy first appearing on another site."""
    client = redis.Redis.from_url(cluster_env["WIRE_REDIS_URL"])
    keys = Keys.for_prefix(prefix)
    newsroom.publish("oldstyle", "oldstyle", DAM, "/news/dam.html", changing=True)
    newsroom.publish("wordpress", "wordpress", DAM, "/2021/07/06/dam/")
    newsroom.publish("modern", "modern", DAM, "/world/dam")
    newsroom.publish("oldstyle", "oldstyle", PORT, "/news/port.html", changing=True)
    newsroom.site("trending")  # nothing on it yet
    start()
    cluster.wait(lambda: _settled(client, keys, 4), timeout=120, what="the first copies to be decided")
    assert _events(_items(client, keys)) == sorted([(DAM["title"], "new", 1), (PORT["title"], "new", 1)])

    # the modern site adds two paragraphs to its page; the port story's grown version appears on another site
    newsroom.publish("modern", "modern", DAM, "/world/dam", updated=True)
    newsroom.publish("trending", "trending", PORT, "/news/port-talks.html", updated=True)
    cluster.wait(lambda: len(_items(client, keys)) >= 4, timeout=120, what="two updates")
    # then another site carries the grown stories too
    newsroom.publish("wordpress", "wordpress", DAM, "/2021/07/06/dam/", updated=True)
    newsroom.publish("wordpress", "wordpress", PORT, "/2021/07/06/port/", updated=True)
    rounds = newsroom.rounds()
    cluster.wait(lambda: newsroom.rounds() >= rounds + 3 and _settled(client, keys, 0), timeout=120,
                 what="three more discovery rounds, every page they found decided")
    items = _items(client, keys)
    assert _events(items) == sorted([(DAM["title"], "new", 1), (DAM["title"], "update", 2),
                                     (PORT["title"], "new", 1), (PORT["title"], "update", 2)])
    by_title: dict[str, set[str]] = {}
    for i in items:
        by_title.setdefault(i["title"], set()).add(i["story_id"])
    assert all(len(ids) == 1 for ids in by_title.values())
    grown = next(i for i in items if i["title"] == DAM["title"] and i["event"] == "update")
    assert DAM["update"][0][:60] in grown["body"]


def test_stories_sharing_a_lede_or_background_stay_apart(
        cluster: Cluster, cluster_env: dict[str, str], prefix: str, newsroom: Newsroom,
        start: Callable[[], None]) -> None:
    """Two stories under one dateline opening with the same paragraph, and two sharing three background
    paragraphs, each on a site without leaking furniture and on the old-style site (the same furniture
    around both): four stories, each `new` once."""
    client = redis.Redis.from_url(cluster_env["WIRE_REDIS_URL"])
    keys = Keys.for_prefix(prefix)
    slugs = ["quake-coast-damage", "quake-markets-alert", "drought-wheat-prices", "drought-cattle-sales"]
    for slug in slugs:
        newsroom.publish("oldstyle", "oldstyle", NEWSROOM[slug], f"/news/{slug}.html")
        newsroom.publish("wordpress", "wordpress", NEWSROOM[slug], f"/2021/07/06/{slug}/")
    start()
    cluster.wait(lambda: _settled(client, keys, 8), timeout=120, what="the eight pages to be decided")
    items = _items(client, keys)
    assert _events(items) == sorted((NEWSROOM[s]["title"], "new", 1) for s in slugs)
    assert len({i["story_id"] for i in items}) == 4
    assert _stats(client, keys)["duplicates"] == 4


def test_an_update_signalled_only_by_a_moved_sitemap_lastmod_is_published(
        cluster: Cluster, cluster_env: dict[str, str], prefix: str, site_server: tuple[SiteServer, dict]) -> None:
    """A page listed by a feed (read first, its entry never changes) and by a sitemap: when the page grows
    and only the sitemap's lastmod moves, wire fetches it again and publishes the `update`; until then it
    never fetches it twice."""
    server, _ = site_server
    client = redis.Redis.from_url(cluster_env["WIRE_REDIS_URL"])
    keys = Keys.for_prefix(prefix)
    site = server.add("both", "127.0.0.49")
    site.routes["/robots.txt"] = (404, {}, "")
    site.routes["/rss"] = static(rss(site.base, [(DAM["title"], "/news/dam.html")]),
                                 {"Content-Type": "application/rss+xml"}, validators=False)
    stamp = [_stamp(time.time() - 3600)]
    site.routes["/sitemap.xml"] = lambda count, req: Resp(200, XML, sitemap(site.base, [("/news/dam.html", stamp[0])]))
    site.routes["/news/dam.html"] = static(TEMPLATES["wordpress"](DAM), html_headers("wordpress"))
    Path(cluster_env["WIRE_SOURCES"]).write_text(
        f"sources:\n  - name: both\n    feeds: ['{site.base}/rss']\n    sitemaps: ['{site.base}/sitemap.xml']\n"
        "    interval: 2s\n    rate: 20\n")
    cluster.start("worker", "worker", "--queues", "discover,fetch,process", "--pool", "threads", "--concurrency", "4")
    cluster.start("beat", "beat")
    cluster.wait(lambda: _items(client, keys), timeout=90, what="the story")
    rounds = len(server.requests("both", "/sitemap.xml"))
    cluster.wait(lambda: len(server.requests("both", "/sitemap.xml")) >= rounds + 2, timeout=60,
                 what="two more discovery rounds")
    assert len(server.requests("both", "/news/dam.html")) == 1

    site.routes["/news/dam.html"] = static(TEMPLATES["wordpress"](DAM, updated=True), html_headers("wordpress"),
                                           modified=time.time())
    stamp[0] = _stamp(time.time())
    cluster.wait(lambda: len(_items(client, keys)) >= 2, timeout=90, what="the update")
    items = _items(client, keys)
    assert [(i["event"], i["version"]) for i in items] == [("new", 1), ("update", 2)]
    assert items[0]["story_id"] == items[1]["story_id"]
    assert len(server.requests("both", "/news/dam.html")) == 2
