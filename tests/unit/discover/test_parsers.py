"""Discovery parsers: feeds, sitemaps, listings, autodiscovery, robots.txt, sniffing."""

from __future__ import annotations

import gzip
import io
import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from tests.support import paths
from worker.discover import (
    MAX_FEED_BYTES,
    MAX_SITEMAP_BYTES,
    DiscoverError,
    Entry,
    autodiscover_feeds,
    change_mark,
    dedupe,
    detect_kind,
    filter_recent,
    parse_feed,
    parse_listing,
    parse_sitemap,
    read_capped,
    sitemaps_from_robots,
    to_utc_iso,
)
from worker.errors import WorkerError

FIXTURES = paths.FIXTURES / "discover"
METRO = "https://www.metrodaily.example"


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def epoch(iso: str) -> float:
    return datetime.fromisoformat(iso).timestamp()


# ------------------------------------------------------------------ feeds


def test_rss091() -> None:
    """RSS 0.91 with a Netscape DOCTYPE and latin-1 bytes parses; relative links resolve."""
    entries = parse_feed(fixture("rss091.xml"), "http://www.valleygazette.example/rss.xml")
    assert [e.url for e in entries] == [
        "http://www.valleygazette.example/news/cafe-permits.html",
        "http://www.valleygazette.example/news/bridge-reopens.html",
    ]
    assert entries[0].title == "Council approves café permits"
    assert entries[1].title == "Bridge reopens after repairs in Sainte-Adèle"
    assert entries[0].published is None


def test_rss10_rdf() -> None:
    """RSS 1.0 items are siblings of the channel; dc:date converts to UTC; rdf:about is the fallback link."""
    entries = parse_feed(fixture("rss10.rdf"), "https://science.example.org/rss")
    assert entries == [
        Entry(
            "https://science.example.org/2024/05/comet",
            "Comet visible to the naked eye this week",
            "2024-05-01T12:30:00Z",
            None,
        ),
        Entry(
            "https://science.example.org/2024/05/reef",
            "Coral reef recovery faster than expected",
            "2024-04-30T00:00:00Z",
            None,
        ),
    ]


def test_rss20_links_guid_and_feedburner() -> None:
    """origLink beats the feedburner link, a permalink guid stands in for link, isPermaLink=false never does."""
    entries = parse_feed(fixture("rss20.xml"), "https://feeds.feedburner.com/metrodaily")
    assert [e.url for e in entries] == [
        f"{METRO}/politics/transit-plan",
        f"{METRO}/weather/storm-warning",
        f"{METRO}/education/budgets",
        f"{METRO}/misc/garbage-date",
    ]


def test_rss20_titles_and_dates() -> None:
    """Titles lose markup and double escaping; RFC 822 dates become UTC ISO; bad dates become None."""
    by_url = {e.url: e for e in parse_feed(fixture("rss20.xml"), "https://feeds.feedburner.com/metrodaily")}
    assert by_url[f"{METRO}/politics/transit-plan"].published == "2024-05-01T12:00:00Z"
    storm = by_url[f"{METRO}/weather/storm-warning"]
    assert (storm.title, storm.published) == ("Storm warning for the coast", "2024-05-01T14:15:00Z")
    assert by_url[f"{METRO}/education/budgets"].title == "Schools & budgets: what changes"
    assert by_url[f"{METRO}/misc/garbage-date"].published is None


def test_rss20_duplicate_links_keep_the_first() -> None:
    """Two items with one canonical URL yield one entry, the first one."""
    entries = parse_feed(fixture("rss20.xml"), "https://feeds.feedburner.com/metrodaily")
    transit = [e for e in entries if e.url.endswith("/transit-plan")]
    assert [e.title for e in transit] == ["Mayor unveils transit plan"]


def test_atom_alternate_link_wins() -> None:
    """Among self, edit, enclosure and two alternates, the text/html alternate is the entry URL."""
    entries = parse_feed(fixture("atom.xml"), "https://wire.example.net/atom.xml")
    assert entries[0] == Entry(
        "https://wire.example.net/markets/rally",
        "Markets rally on rate news",
        "2024-05-01T09:58:00Z",
        "2024-05-01T12:10:00Z",
    )


def test_atom_relative_links_xml_base_and_id_fallback() -> None:
    """Rel-less links count as alternate, xml:base resolves hrefs, an http id is the last resort."""
    entries = parse_feed(fixture("atom.xml"), "https://wire.example.net/atom.xml")
    assert [e.url for e in entries[1:]] == [
        "https://wire.example.net/politics/certified",
        "https://wire.example.net/sport/final-score",
        "https://wire.example.net/culture/festival",
    ]
    assert entries[1].title == "Election results certified"
    assert entries[2].lastmod == "2024-04-29T20:00:00Z"


def test_json_feed() -> None:
    """JSON Feed 1.1: url, then an http id; relative urls resolve; junk items are skipped."""
    entries = parse_feed(fixture("jsonfeed.json"), "https://harbortimes.example/feed.json")
    assert entries == [
        Entry(
            "https://harbortimes.example/2024/05/01/ferry-strike",
            "Ferry workers strike",
            "2024-05-01T14:00:00Z",
            "2024-05-01T16:30:00Z",
        ),
        Entry(
            "https://harbortimes.example/2024/04/30/new-pier", "New pier opens", "2024-04-30T10:00:00Z", None
        ),
        Entry("https://harbortimes.example/2024/04/29/link-post", "Worth reading elsewhere", None, None),
    ]


def test_json_that_is_not_a_feed() -> None:
    """JSON without an items list, or with a foreign version, is a DiscoverError."""
    with pytest.raises(DiscoverError):
        parse_feed(b'{"data": []}', "https://x.example/")
    with pytest.raises(DiscoverError):
        parse_feed(b'{"version": "https://example.com/v1", "items": []}', "https://x.example/")
    with pytest.raises(DiscoverError):
        parse_feed(b"{not json", "https://x.example/")


def test_malformed_xml_is_recovered() -> None:
    """A feed with bare ampersands and no closing tags still yields its readable items."""
    entries = parse_feed(fixture("malformed.xml"), "https://broken.example/rss")
    assert entries[0] == Entry(
        "https://broken.example/profits", "Profits & losses", "2024-05-01T12:00:00Z", None
    )
    # the unclosed <b> swallows the second item's <link>; it is still found
    assert [e.url for e in entries] == ["https://broken.example/profits", "https://broken.example/unclosed"]


def test_cdata_ampersand_untouched_in_valid_xml() -> None:
    """The bare-ampersand repair only runs on broken XML, so a valid CDATA link keeps its query."""
    doc = b"<rss><channel><item><link><![CDATA[https://x.example/q?b=2&a=1]]></link></item></channel></rss>"
    assert parse_feed(doc, "https://x.example/")[0].url == "https://x.example/q?a=1&b=2"


def test_billion_laughs_refused_fast() -> None:
    """A DOCTYPE with nested entity declarations is refused before any expansion."""
    start = time.perf_counter()
    with pytest.raises(DiscoverError, match="entities"):
        parse_feed(fixture("billion_laughs.xml"), "https://evil.example/")
    assert time.perf_counter() - start < 0.5


def test_billion_laughs_in_utf16_refused() -> None:
    """The entity check also sees through UTF-16 encoding."""
    doc = (
        fixture("billion_laughs.xml")
        .decode()
        .replace('<?xml version="1.0"?>', '<?xml version="1.0" encoding="UTF-16"?>')
    )
    with pytest.raises(DiscoverError):
        parse_feed(doc.encode("utf-16"), "https://evil.example/")


def test_billion_laughs_in_sitemap_refused() -> None:
    """Sitemaps go through the same safe parser."""
    doc = fixture("billion_laughs.xml").replace(b"<rss", b"<urlset").replace(b"</rss>", b"</urlset>")
    with pytest.raises(DiscoverError):
        parse_sitemap(doc, "https://evil.example/")


def test_external_entity_never_read() -> None:
    """An XXE SYSTEM entity is refused, so no local file can leak into a title."""
    with pytest.raises(DiscoverError):
        parse_feed(fixture("xxe.xml"), "https://evil.example/")


def test_feed_over_the_cap_refused_quickly() -> None:
    """A 100 MB feed is refused by size before parsing starts."""
    huge = (
        b"<rss><channel>" + b"<item><title>x</title></item>" * (100 * 1024 * 1024 // 29) + b"</channel></rss>"
    )
    assert len(huge) > 100 * 1024 * 1024 > MAX_FEED_BYTES
    start = time.perf_counter()
    with pytest.raises(DiscoverError, match="larger than"):
        parse_feed(huge, "https://big.example/")
    assert time.perf_counter() - start < 0.5


def test_read_capped_stops_a_100mb_stream_early() -> None:
    """read_capped consumes a chunk stream only until it passes the cap."""
    pulled = 0

    def stream() -> Iterator[bytes]:
        nonlocal pulled
        for _ in range(100):  # 100 x 1 MB
            pulled += 1
            yield b"<item/>" * (1024 * 1024 // 7)

    with pytest.raises(DiscoverError):
        read_capped(stream(), MAX_FEED_BYTES)
    assert pulled <= MAX_FEED_BYTES // (1024 * 1024) + 2


def test_gzipped_feed() -> None:
    """A gzipped feed is decompressed transparently."""
    entries = parse_feed(gzip.compress(fixture("rss20.xml")), "https://feeds.feedburner.com/metrodaily")
    assert len(entries) == 4


@pytest.mark.parametrize(
    "doc",
    [b"", b"   ", b"<html><body>Not a feed</body></html>", b"\x00\x01\x02garbage", b"<urlset></urlset>"],
)
def test_non_feeds_raise(doc: bytes) -> None:
    """Anything that is not RSS, Atom or JSON Feed raises DiscoverError, a WorkerError."""
    with pytest.raises(DiscoverError):
        parse_feed(doc, "https://x.example/")
    assert issubclass(DiscoverError, WorkerError)


def test_empty_rss_has_no_entries() -> None:
    """A valid feed with no items is an empty list, not an error."""
    assert (
        parse_feed(b'<rss version="2.0"><channel><title>t</title></channel></rss>', "https://x.example/")
        == []
    )


def test_feed_links_that_are_not_http_are_skipped() -> None:
    """Items whose only link is javascript: or mailto: are dropped."""
    doc = (
        b"<rss><channel>"
        b"<item><link>javascript:alert(1)</link></item>"
        b"<item><link>mailto:tips@x.example</link></item>"
        b"<item><link>https://x.example/ok</link></item>"
        b"</channel></rss>"
    )
    assert [e.url for e in parse_feed(doc, "https://x.example/")] == ["https://x.example/ok"]


# ------------------------------------------------------------------ dates

DATES = [
    ("Wed, 01 May 2024 12:00:00 GMT", "2024-05-01T12:00:00Z"),
    ("Wed, 01 May 2024 12:00:00 +0200", "2024-05-01T10:00:00Z"),
    ("1 May 2024 12:00 EST", "2024-05-01T17:00:00Z"),
    ("Wed, 01 May 2024 12:00:00 -0000", "2024-05-01T12:00:00Z"),
    ("2024-05-01T12:00:00Z", "2024-05-01T12:00:00Z"),
    ("2024-05-01T12:00:00.250+05:30", "2024-05-01T06:30:00Z"),
    ("2024-05-01t12:00:00z", "2024-05-01T12:00:00Z"),
    ("2024-05-01 12:00:00", "2024-05-01T12:00:00Z"),
    ("2024-05-01T12:00+01:00", "2024-05-01T11:00:00Z"),
    ("2024-05-01", "2024-05-01T00:00:00Z"),
    ("2024-05", "2024-05-01T00:00:00Z"),
    ("2024", "2024-01-01T00:00:00Z"),
    ("", None),
    ("yesterday", None),
    ("2024-13-45", None),
    (None, None),
]


@pytest.mark.parametrize(("raw", "expected"), DATES)
def test_dates_to_utc_iso(raw: str | None, expected: str | None) -> None:
    """RFC 822, RFC 3339 and W3C dates normalise to UTC ISO-8601 with Z; junk is None."""
    assert to_utc_iso(raw) == expected


# ------------------------------------------------------------------ sitemaps


def test_sitemap_urlset_with_lastmod() -> None:
    """A urlset yields one entry per <loc>, with lastmod; image:loc is not a page."""
    sitemap = parse_sitemap(fixture("sitemap.xml"), f"{METRO}/sitemap.xml")
    assert sitemap.sitemaps == []
    assert [(e.url, e.lastmod) for e in sitemap.entries] == [
        (f"{METRO}/politics/transit-plan", "2024-05-01T12:30:00Z"),
        (f"{METRO}/weather/storm-warning", "2024-05-01T00:00:00Z"),
        (f"{METRO}/archive/2019/flood", "2019-06-01T00:00:00Z"),
        (f"{METRO}/about", None),
    ]


def test_sitemap_index() -> None:
    """A sitemap index yields child sitemap URLs (http(s) only) and their lastmod, no entries."""
    sitemap = parse_sitemap(fixture("sitemap_index.xml"), f"{METRO}/sitemap_index.xml")
    assert sitemap.entries == []
    assert sitemap.sitemaps == [
        f"{METRO}/sitemaps/news.xml",
        f"{METRO}/sitemaps/2024-04.xml.gz",
        f"{METRO}/sitemaps/2019-01.xml.gz",
    ]
    now = epoch("2024-05-01T13:00:00+00:00")
    recent = filter_recent(sitemap.children, now, 7 * 86400)
    assert [c.url for c in recent] == sitemap.sitemaps[:2]


def test_google_news_sitemap() -> None:
    """news:publication_date is the published date and news:title the title."""
    sitemap = parse_sitemap(fixture("news_sitemap.xml"), f"{METRO}/news.xml")
    assert sitemap.entries == [
        Entry(
            f"{METRO}/business/merger-talks",
            "Merger talks collapse at the last minute",
            "2024-05-01T14:45:00Z",
            None,
        ),
        Entry(f"{METRO}/sport/derby", "Derby ends in a draw", "2024-05-01T00:00:00Z", "2024-05-01T15:00:00Z"),
    ]


def test_gzipped_sitemap() -> None:
    """Gzip bytes (magic 1f8b) are decompressed before parsing."""
    sitemap = parse_sitemap(gzip.compress(fixture("sitemap.xml")), f"{METRO}/sitemap.xml.gz")
    assert len(sitemap.entries) == 4


def test_gzipped_sitemap_with_two_members() -> None:
    """Concatenated gzip members are all decompressed."""
    raw = fixture("sitemap.xml")
    data = gzip.compress(raw[:200]) + gzip.compress(raw[200:])
    assert len(parse_sitemap(data, f"{METRO}/s.xml.gz").entries) == 4


def test_gzip_bomb_refused() -> None:
    """200 MB of zeros in a ~200 KB gzip stops at the 50 MB cap with DiscoverError."""
    buf = io.BytesIO()
    with gzip.GzipFile(fileobj=buf, mode="wb", compresslevel=1) as gz:
        chunk = b"\0" * (1024 * 1024)
        for _ in range(200):
            gz.write(chunk)
    bomb = buf.getvalue()
    assert len(bomb) < MAX_SITEMAP_BYTES // 10
    start = time.perf_counter()
    with pytest.raises(DiscoverError, match="gzip expands"):
        parse_sitemap(bomb, f"{METRO}/bomb.xml.gz")
    assert time.perf_counter() - start < 5


def test_gzip_cap_is_configurable() -> None:
    """max_bytes lowers the decompressed cap."""
    with pytest.raises(DiscoverError):
        parse_sitemap(gzip.compress(fixture("sitemap.xml")), f"{METRO}/s.xml.gz", max_bytes=100)


def test_corrupt_gzip_raises() -> None:
    """Bytes with a gzip magic but a broken stream are a DiscoverError."""
    with pytest.raises(DiscoverError):
        parse_sitemap(b"\x1f\x8b\x08\x00garbagegarbage", f"{METRO}/s.xml.gz")


def test_text_sitemap() -> None:
    """A plain-text sitemap lists one URL per line."""
    data = f"{METRO}/a\n\n{METRO}/b?utm_source=x\r\n".encode()
    assert [e.url for e in parse_sitemap(data, f"{METRO}/sitemap.txt").entries] == [
        f"{METRO}/a",
        f"{METRO}/b",
    ]


def test_sitemap_rejects_html() -> None:
    """An HTML error page where a sitemap was expected is a DiscoverError."""
    with pytest.raises(DiscoverError):
        parse_sitemap(b"<!DOCTYPE html><html><body>Oops</body></html>", f"{METRO}/sitemap.xml")
    with pytest.raises(DiscoverError):
        parse_sitemap(b"Service unavailable", f"{METRO}/sitemap.xml")


def test_feed_served_as_sitemap() -> None:
    """An RSS feed listed as a sitemap is read as one."""
    sitemap = parse_sitemap(fixture("rss20.xml"), f"{METRO}/rss")
    assert len(sitemap.entries) == 4 and sitemap.sitemaps == []


# ------------------------------------------------------------------ recency


def test_filter_recent() -> None:
    """Entries older than max_age by both dates are dropped; undated and updated ones kept."""
    now = epoch("2024-05-01T12:00:00+00:00")
    entries = [
        Entry("https://x.example/new", published="2024-05-01T11:00:00Z"),
        Entry("https://x.example/old", published="2024-04-01T00:00:00Z"),
        Entry("https://x.example/updated", published="2020-01-01T00:00:00Z", lastmod="2024-05-01T10:00:00Z"),
        Entry("https://x.example/undated"),
        Entry("https://x.example/stale-lastmod", lastmod="2024-04-29T11:59:59Z"),
        Entry("https://x.example/edge", lastmod="2024-04-29T12:00:00Z"),
    ]
    kept = filter_recent(entries, now, 2 * 86400)
    assert [e.url.rsplit("/", 1)[1] for e in kept] == ["new", "updated", "undated", "edge"]


def test_entries_of_one_url_merge_into_one_with_the_latest_lastmod() -> None:
    """A feed item without lastmod read first does not hide a sitemap entry's lastmod; the first title stays."""
    feed = Entry("https://x.example/a", title="From the feed", published="2024-05-01T08:00:00Z")
    older = Entry("https://x.example/a", lastmod="2024-05-01T09:00:00Z")
    newer = Entry("https://x.example/a", title="From the sitemap", lastmod="2024-05-01T11:30:00Z")
    (merged,) = dedupe([feed, newer, older])
    assert merged == Entry("https://x.example/a", title="From the feed", published="2024-05-01T08:00:00Z",
                           lastmod="2024-05-01T11:30:00Z")
    assert [e.url for e in dedupe([feed, Entry("https://x.example/b"), newer])] == [
        "https://x.example/a", "https://x.example/b"]


def test_change_mark_is_the_latest_date_an_entry_gives() -> None:
    """A news sitemap's publication date counts as much as a lastmod; no date, no mark."""
    assert change_mark(Entry("https://x.example/a", published="2024-05-02T00:00:00Z",
                             lastmod="2024-05-01T00:00:00Z")) == "2024-05-02T00:00:00Z"
    assert change_mark(Entry("https://x.example/a", lastmod="2024-05-01T00:00:00Z")) == "2024-05-01T00:00:00Z"
    assert change_mark(Entry("https://x.example/a")) is None


def test_filter_recent_on_a_real_sitemap() -> None:
    """The 2019 archive page falls out of a one-week window."""
    sitemap = parse_sitemap(fixture("sitemap.xml"), f"{METRO}/sitemap.xml")
    kept = filter_recent(sitemap.entries, epoch("2024-05-02T00:00:00+00:00"), 7 * 86400)
    assert f"{METRO}/archive/2019/flood" not in [e.url for e in kept]
    assert len(kept) == 3


# ------------------------------------------------------------------ HTML


def test_listing_with_container_selector() -> None:
    """A card selector finds the link inside each card; base href, canonicalisation and dedup apply."""
    entries = parse_listing(fixture("listing.html"), f"{METRO}/politics/", "main article.card")
    assert entries == [
        Entry(f"{METRO}/politics/transit-plan", "Mayor unveils transit plan"),
        Entry(f"{METRO}/politics/council-vote", "Council vote delayed"),
        Entry(f"{METRO}/politics/budget", "Budget 2025"),
    ]


def test_listing_with_link_selector() -> None:
    """A selector naming the <a> itself works, and matches outside <main> too."""
    entries = parse_listing(fixture("listing.html"), f"{METRO}/politics/", "a.headline")
    assert [e.url for e in entries][-1] == f"{METRO}/sponsored/ad"
    assert len(entries) == 4


def test_listing_without_base_tag_uses_page_url() -> None:
    """Relative hrefs resolve against the page URL when there is no <base>."""
    html = b'<ul><li><a href="story-1">One</a></li><li><a href="../story-2">Two</a></li></ul>'
    entries = parse_listing(html, "https://x.example/news/", "li a")
    assert [e.url for e in entries] == ["https://x.example/news/story-1", "https://x.example/story-2"]


def test_listing_bad_selector() -> None:
    """An invalid CSS selector is a DiscoverError naming it."""
    with pytest.raises(DiscoverError, match="selector"):
        parse_listing(b"<a href='/x'>x</a>", "https://x.example/", "a[href")


def test_listing_charset_from_meta() -> None:
    """Bytes in a declared legacy charset decode correctly."""
    html = '<meta charset="windows-1252"><a class="s" href="/caf\u00e9">Caf\u00e9 opens</a>'.encode("cp1252")
    assert parse_listing(html, "https://x.example/", "a.s") == [
        Entry("https://x.example/caf%C3%A9", "Café opens")
    ]


def test_autodiscover_feeds() -> None:
    """rel=alternate links of RSS, Atom and JSON Feed types, resolved and de-duplicated, in order."""
    assert autodiscover_feeds(fixture("listing.html"), f"{METRO}/politics/") == [
        f"{METRO}/politics/rss.xml",
        f"{METRO}/politics/atom.xml",
        f"{METRO}/feed.json",
    ]


def test_autodiscover_none() -> None:
    """A page without feed links yields an empty list."""
    assert autodiscover_feeds(b"<html><head><title>x</title></head></html>", "https://x.example/") == []


def test_html_over_the_cap_refused() -> None:
    """A page above MAX_HTML_BYTES is refused before parsing."""
    with pytest.raises(DiscoverError):
        parse_listing(b"<p>" * (8 * 1024 * 1024), "https://x.example/", "a")


# ------------------------------------------------------------------ robots.txt


def test_sitemaps_from_robots() -> None:
    """Sitemap: lines in any case, relative ones resolved, duplicates, blanks and non-http dropped."""
    robots = fixture("robots.txt").decode()
    assert sitemaps_from_robots(robots, f"{METRO}/robots.txt") == [
        f"{METRO}/sitemap_index.xml",
        f"{METRO}/sitemaps/news.xml",
    ]


def test_sitemaps_from_robots_with_bom_and_none() -> None:
    """A BOM before the first line is ignored; a robots.txt without Sitemap lines yields nothing."""
    assert sitemaps_from_robots("\ufeffSitemap: https://x.example/s.xml", "https://x.example/") == [
        "https://x.example/s.xml"
    ]
    assert sitemaps_from_robots("User-agent: *\nDisallow:", "https://x.example/") == []


# ------------------------------------------------------------------ sniffing

KINDS = [
    ("rss091.xml", None, "feed"),
    ("rss10.rdf", "application/xml", "feed"),
    ("rss20.xml", "text/html", "feed"),
    ("atom.xml", "text/xml", "feed"),
    ("jsonfeed.json", "application/json", "feed"),
    ("sitemap.xml", "text/html", "sitemap"),
    ("sitemap_index.xml", None, "sitemap"),
    ("news_sitemap.xml", "application/xml", "sitemap"),
    ("listing.html", "application/rss+xml", "html"),
]


@pytest.mark.parametrize(("name", "content_type", "expected"), KINDS)
def test_detect_kind_from_content(name: str, content_type: str | None, expected: str) -> None:
    """The document's root element decides, whatever the Content-Type says."""
    assert detect_kind(fixture(name), content_type) == expected


def test_detect_kind_gzip_and_fallbacks() -> None:
    """Gzip is sniffed inside; unknown content falls back to the Content-Type, then html."""
    assert detect_kind(gzip.compress(fixture("sitemap.xml")), "application/octet-stream") == "sitemap"
    assert detect_kind(gzip.compress(fixture("rss20.xml")), None) == "feed"
    assert detect_kind(b"<weird/>", "application/atom+xml") == "feed"
    assert detect_kind(b"https://x.example/a\nhttps://x.example/b\n", "text/plain") == "sitemap"
    assert detect_kind(b"<!doctype html><p>hi", None) == "html"
    assert detect_kind(b"", None) == "html"


def test_detect_kind_utf16_feed() -> None:
    """A UTF-16 feed with a BOM is recognised."""
    doc = '<?xml version="1.0" encoding="UTF-16"?><rss version="2.0"><channel/></rss>'.encode("utf-16")
    assert detect_kind(doc, None) == "feed"


def test_entry_is_frozen_and_json_friendly() -> None:
    """Entry is an immutable value made of JSON primitives."""
    entry = Entry("https://x.example/a", "T", "2024-05-01T12:00:00Z", None)
    with pytest.raises(AttributeError):
        entry.url = "https://x.example/b"  # type: ignore[misc]
    assert json.loads(json.dumps(entry.__dict__))["url"] == "https://x.example/a"


def test_now_is_never_read_from_the_clock() -> None:
    """filter_recent is deterministic: the same now gives the same answer in any year."""
    entries = [Entry("https://x.example/a", published="2000-01-01T00:00:00Z")]
    assert filter_recent(entries, datetime(2000, 1, 2, tzinfo=UTC).timestamp(), 2 * 86400) == entries



SMUGGLED = "http://127.0.0.1:8080\\@8.8.8.8/internal"  # urllib3 reads host 127.0.0.1; urlsplit reads 8.8.8.8
REFUSED_LINKS = [SMUGGLED, "http://editor:pw@news.example/a", "http://[::1", "http://news.example:99999/x"]


def _refused(entries: list[Entry]) -> dict[str, str | None]:
    return {e.url: e.refused for e in entries if e.refused}


def test_a_feed_item_whose_link_is_refused_is_kept_as_refused() -> None:
    """An RSS item whose link is malformed, or carries a backslash or credentials in its host part, comes out
    as the link as written with why (never rewritten to the host after the `@`); a javascript: link and an
    item with no link give nothing; the good link is an ordinary entry."""
    items = "".join(f"<item><link>{link.replace('&', '&amp;')}</link></item>" for link in
                    [f"{METRO}/good", *REFUSED_LINKS, "javascript:alert(1)"]) + "<item><title>x</title></item>"
    entries = parse_feed(f'<rss version="2.0"><channel>{items}</channel></rss>'.encode(), METRO + "/feed")
    assert [e.url for e in entries if not e.refused] == [f"{METRO}/good"]
    refused = _refused(entries)
    assert sorted(refused) == sorted(REFUSED_LINKS)
    assert "backslash or credentials" in (refused[SMUGGLED] or "")
    assert all(not e.url.startswith("http://8.8.8.8") for e in entries)


def test_atom_json_feed_sitemap_and_listing_keep_refused_links() -> None:
    """The same in an Atom entry, a JSON Feed item, a sitemap <loc> and a listing page's link."""
    atom = (f'<feed xmlns="http://www.w3.org/2005/Atom"><entry><id>x</id><link href="{SMUGGLED}"/></entry>'
            f'<entry><link href="{METRO}/a"/></entry></feed>').encode()
    json_feed = json.dumps({"version": "https://jsonfeed.org/version/1.1", "title": "t",
                            "items": [{"id": "1", "url": SMUGGLED}, {"id": "2", "url": f"{METRO}/b"}]}).encode()
    sitemap = (f'<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9"><url><loc>{SMUGGLED}</loc></url>'
               f'<url><loc>{METRO}/c</loc></url></urlset>').encode()
    listing = (f'<html><body><a class="s" href="{SMUGGLED}">x</a><a class="s" href="{METRO}/d">d</a>'
               f'<a class="s" href="mailto:x@y">m</a></body></html>').encode()
    for entries, good in ((parse_feed(atom, METRO), "/a"), (parse_feed(json_feed, METRO), "/b"),
                          (parse_sitemap(sitemap, METRO).entries, "/c"), (parse_listing(listing, METRO, "a.s"), "/d")):
        assert _refused(entries) == {SMUGGLED: _refused(entries)[SMUGGLED]}, entries
        assert [e.url for e in entries if not e.refused] == [METRO + good]
