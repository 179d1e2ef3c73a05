"""Discovery through the pipeline's discover stage, against real Redis and loopback sites."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis as _redis

from tests.support.faultnet import article_page, news_sitemap, sitemap_index
from tests.support.helpers import test_settings
from tests.support.loopback import RSS, SiteServer, fixed, static
from worker.models import Candidate
from worker.pipeline.deps import Deps
from worker.pipeline.discover import discover
from worker.settings import parse_sources
from worker.trail import read


@pytest.fixture
def fault() -> Iterator[SiteServer]:
    server = SiteServer()
    yield server
    server.stop()


def _deps(text: str, redis_url: str, prefix: str, r: _redis.Redis) -> Deps:
    return Deps.create(test_settings(redis_url, prefix), parse_sources(text, "t.yaml"), client=r)


def test_home_page_feed_is_autodiscovered_and_read_again_after_a_304(fault: SiteServer, r: _redis.Redis,
                                                                     redis_url: str, prefix: str) -> None:
    """A `feeds` URL that is a home page: its advertised feed is read; when the page answers 304 the feed still is."""
    import time as _time

    site = fault.add("home", "127.0.0.31")
    site.routes["/robots.txt"] = fixed(404)
    site.routes["/"] = static('<html><head><link rel="alternate" type="application/rss+xml" href="/rss">'
                              "</head><body>Home</body></html>")
    items = "".join(f"<item><link>{site.base}/s{i}.html</link></item>" for i in range(3))
    site.routes["/rss"] = static(f'<rss version="2.0"><channel>{items}</channel></rss>', RSS)
    deps = _deps(f"sources:\n- name: home\n  feeds: ['{site.base}/']\n  rate: 50\n", redis_url, prefix, r)
    found: list[Candidate] = []
    report = discover("home", deps, enqueue=found.extend)
    assert sorted(c.url for c in found) == [f"{site.base}/s{i}.html" for i in range(3)] and not report.errors
    site.routes["/rss"] = static(f'<rss version="2.0"><channel>{items}<item><link>{site.base}/new.html</link>'
                                 "</item></channel></rss>", RSS, modified=_time.time())
    again: list[Candidate] = []
    discover("home", deps, enqueue=again.extend)
    assert [c.url for c in again] == [f"{site.base}/new.html"]
    assert fault.requests("home", "/")[-1].status == 304
    assert "If-None-Match" in fault.requests("home", "/")[-1].headers


def test_site_root_under_sitemaps_reads_robots_sitemap_lines(fault: SiteServer, r: _redis.Redis, redis_url: str,
                                                            prefix: str) -> None:
    """A site root listed under `sitemaps` stands for robots.txt's Sitemap: lines; old entries are not enqueued."""
    import time as _time

    now = _time.time()
    site = fault.add("news", "127.0.0.32")
    site.routes["/robots.txt"] = static(f"User-agent: *\nAllow: /\nSitemap: {site.base}/index.xml\n",
                                        {"Content-Type": "text/plain"})
    site.routes["/index.xml"] = static(sitemap_index(site.base, [("/news.xml", now), ("/2019.xml", now - 900 * 86400)]))
    site.routes["/news.xml"] = static(news_sitemap(site.base, [("/fresh.html", now - 60), ("/old.html", now - 9e5)]))
    site.routes["/fresh.html"] = static(article_page(1, "news"))
    deps = _deps(f"sources:\n- name: news\n  sitemaps: ['{site.base}/']\n  rate: 50\n", redis_url, prefix, r)
    found: list[Candidate] = []
    discover("news", deps, enqueue=found.extend)
    assert [c.url for c in found] == [f"{site.base}/fresh.html"]
    assert found[0].published  # news:publication_date travels with the candidate
    assert fault.requests("news", "/2019.xml") == []


def test_failed_discovery_leaves_the_source_stale(fault: SiteServer, r: _redis.Redis, redis_url: str,
                                                 prefix: str) -> None:
    """A source whose only feed fails records the error but no last_success; the next success sets it."""
    site = fault.add("down", "127.0.0.33")
    site.routes["/robots.txt"] = fixed(404)
    site.routes["/feed"] = lambda count, req: (fixed(500)(count, req) if count == 1 else
                                               static('<rss version="2.0"><channel></channel></rss>', RSS)(count, req))
    deps = _deps(f"sources:\n- name: down\n  feeds: ['{site.base}/feed']\n  rate: 50\n", redis_url, prefix, r)
    discover("down", deps, enqueue=lambda c: None, now=1000.0)
    state = r.hgetall(deps.keys.source_state("down"))
    assert b"last_success" not in state and state[b"errors"] == b"1"
    discover("down", deps, enqueue=lambda c: None, now=2000.0)
    assert r.hget(deps.keys.source_state("down"), "last_success") == b"2000.0"


def test_one_failing_document_never_costs_the_others(fault: SiteServer, r: _redis.Redis, redis_url: str,
                                                      prefix: str) -> None:
    """A feed redirecting to `http://[::1` and a sitemap answering 503 with `Retry-After: ²` (each raised
    ValueError out of the whole discovery) are recorded as the source's errors; the listing and the feed
    beside them are read and their URLs enqueued, each with its trail saying where it was found."""
    site = fault.add("mixed", "127.0.0.34")
    site.routes["/robots.txt"] = fixed(404)
    site.routes["/bad-feed"] = fixed(302, {"Location": "http://[::1"})
    site.routes["/bad-sitemap.xml"] = fixed(503, {"Retry-After": "²"})
    site.routes["/feed"] = static(f'<rss version="2.0"><channel><item><link>{site.base}/a.html</link></item>'
                                  "</channel></rss>", RSS)
    site.routes["/list/"] = static(f'<html><body><a class=s href="{site.base}/b.html">B</a></body></html>')
    deps = _deps(f"sources:\n- name: mixed\n  feeds: ['{site.base}/bad-feed', '{site.base}/feed']\n"
                 f"  sitemaps: ['{site.base}/bad-sitemap.xml']\n"
                 f"  listings: [{{url: '{site.base}/list/', links: 'a.s'}}]\n  rate: 50\n", redis_url, prefix, r)
    found: list[Candidate] = []
    report = discover("mixed", deps, enqueue=found.extend)
    assert sorted(c.url for c in found) == [f"{site.base}/a.html", f"{site.base}/b.html"]
    assert len(report.errors) == 2
    assert report.errors[0].startswith(f"{site.base}/bad-feed: ")
    assert report.errors[1].startswith(f"{site.base}/bad-sitemap.xml: ")
    assert r.hget(deps.keys.source_state("mixed"), "last_success") is not None
    (feed_event,) = read(r, deps.keys, f"{site.base}/a.html").events
    assert (feed_event["ev"], feed_event["source"], feed_event["doc"], feed_event["via"]) == (
        "discovered", "mixed", "feed", f"{site.base}/feed")
    assert read(r, deps.keys, f"{site.base}/b.html").events[0]["doc"] == "listing"


def test_a_lastmod_moved_in_any_entry_of_a_url_brings_it_back(fault: SiteServer, r: _redis.Redis, redis_url: str,
                                                              prefix: str) -> None:
    """A URL in a feed (no lastmod) and in a sitemap: the sitemap's moved lastmod re-enqueues it though the feed
    entry, read first, is unchanged; a lastmod that goes back (or stays) does not."""
    site = fault.add("both", "127.0.0.35")
    site.routes["/robots.txt"] = fixed(404)
    site.routes["/rss"] = static(f'<rss version="2.0"><channel><item><title>Story</title><link>{site.base}/s.html'
                                 "</link></item></channel></rss>", RSS, validators=False)

    def sitemap_at(stamp: str) -> None:
        site.routes["/sitemap.xml"] = fixed(200, {"Content-Type": "application/xml"},
                                            '<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9"><url>'
                                            f"<loc>{site.base}/s.html</loc><lastmod>{stamp}</lastmod></url></urlset>")

    deps = _deps(f"sources:\n- name: both\n  feeds: ['{site.base}/rss']\n  sitemaps: ['{site.base}/sitemap.xml']"
                 "\n  rate: 50\n", redis_url, prefix, r)
    now = 1_800_000_000.0
    rounds = []
    for stamp in ("2027-01-15T08:00:00Z", "2027-01-15T08:00:00Z", "2027-01-15T09:30:00Z", "2027-01-15T07:00:00Z"):
        sitemap_at(stamp)
        found: list[Candidate] = []
        discover("both", deps, enqueue=found.extend, now=now)
        rounds.append([(c.url, c.title) for c in found])
    story = (f"{site.base}/s.html", "Story")
    assert rounds == [[story], [], [story], []]


def test_a_slowly_paced_source_waits_for_its_slot_instead_of_failing(fault: SiteServer, r: _redis.Redis,
                                                                     redis_url: str, prefix: str) -> None:
    """A source paced at one request per 20 s whose robots.txt is not cached: robots.txt takes the host's
    slot and the sitemap waits its 20 s for the next one, within the discovery's budget, instead of failing
    as "host busy" and leaving the source undiscovered until its next interval (an hour)."""
    import time as _time

    from tests.support.faultnet import url_sitemap

    site = fault.add("slow", "127.0.0.34")
    site.routes["/robots.txt"] = fixed(404)
    now = _time.time()
    site.routes["/sitemap.xml"] = static(url_sitemap(site.base, [("/a.html", now), ("/b.html", now)]))
    deps = _deps(f"sources:\n- name: slow\n  sitemaps: ['{site.base}/sitemap.xml']\n  rate: 0.05\n",
                 redis_url, prefix, r)
    found: list[Candidate] = []
    report = discover("slow", deps, enqueue=found.extend)
    assert not report.errors, report.errors
    assert sorted(c.url for c in found) == [f"{site.base}/a.html", f"{site.base}/b.html"]
    robots, sitemap = fault.requests("slow", "/robots.txt")[0], fault.requests("slow", "/sitemap.xml")[0]
    assert sitemap.time - robots.time >= 19.5  # the host's pace kept
