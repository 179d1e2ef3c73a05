"""Sitemaps (urlset, sitemap index, Google News, gzip, plain text) and robots.txt Sitemap: lines."""

from __future__ import annotations

from dataclasses import dataclass, field

from lxml import etree

from worker.discover.base import (
    MAX_SITEMAP_BYTES,
    Entry,
    child_text,
    children,
    clean_text,
    dedupe,
    load_bytes,
    local,
    parse_xml,
    refused_entry,
    resolve,
    to_utc_iso,
)
from worker.discover.feeds import FEED_ROOTS, entries_from_root
from worker.errors import DiscoverError

NEWS_NS = ("http://www.google.com/schemas/sitemap-news/0.9",)


@dataclass(frozen=True)
class Sitemap:
    """What one sitemap document lists: pages, and (for an index) child sitemaps."""

    entries: list[Entry]
    sitemaps: list[str]  # child sitemap URLs of a sitemap index
    # The same children with their <lastmod>, so a caller can skip old
    # monthly sitemaps of a large index with filter_recent.
    children: list[Entry] = field(default_factory=list)


def parse_sitemap(data: bytes, base_url: str, *, max_bytes: int = MAX_SITEMAP_BYTES) -> Sitemap:
    """Parse a (possibly gzipped) sitemap, sitemap index, news sitemap, text sitemap or feed."""
    data = load_bytes(data, max_bytes)
    head = data.lstrip(b"\xef\xbb\xbf \t\r\n")
    if not head:
        return Sitemap(entries=[], sitemaps=[])
    if head[:1] != b"<":
        return _text_sitemap(data, base_url)
    root = parse_xml(data, base_url)
    kind = local(root).lower()
    if kind == "urlset":
        entries = (_url_entry(url, base_url) for url in children(root, "url"))
        return Sitemap(entries=dedupe(e for e in entries if e is not None), sitemaps=[])
    if kind == "sitemapindex":
        found = (_url_entry(sm, base_url) for sm in children(root, "sitemap"))
        kids = dedupe(e for e in found if e is not None)
        return Sitemap(entries=[], sitemaps=[kid.url for kid in kids], children=kids)
    if kind in FEED_ROOTS:  # search engines accept RSS and Atom as sitemaps
        return Sitemap(entries=entries_from_root(root, base_url), sitemaps=[])
    raise DiscoverError(f"not a sitemap: root element <{local(root)}>")


def _url_entry(el: etree._Element, base_url: str) -> Entry | None:
    url = resolve(child_text(el, "loc"), base_url)
    if url is None:
        return refused_entry([child_text(el, "loc")], base_url)
    title = published = None
    for news in children(el, "news", NEWS_NS):
        title = clean_text(child_text(news, "title", NEWS_NS))
        published = to_utc_iso(child_text(news, "publication_date", NEWS_NS))
    return Entry(url=url, title=title, published=published, lastmod=to_utc_iso(child_text(el, "lastmod")))


def _text_sitemap(data: bytes, base_url: str) -> Sitemap:
    """The sitemaps.org plain-text form: one absolute URL per line, UTF-8."""
    entries: list[Entry] = []
    for line in data.decode("utf-8", errors="replace").splitlines():
        line = line.strip().lstrip("\ufeff")
        if not line:
            continue
        url = resolve(line, base_url) if line.lower().startswith(("http://", "https://")) else None
        if url is None:
            # one non-URL line means this is not a text sitemap (an error page, JSON...)
            raise DiscoverError(f"not a sitemap: unexpected line {line[:80]!r}")
        entries.append(Entry(url=url))
    return Sitemap(entries=dedupe(entries), sitemaps=[])


def sitemaps_from_robots(robots_txt: str, base_url: str) -> list[str]:
    """Canonical URLs of the `Sitemap:` lines of a robots.txt, in order, without duplicates."""
    found: list[str] = []
    for raw in robots_txt.lstrip("\ufeff").splitlines():
        key, sep, value = raw.partition(":")
        if not sep or key.strip().lower() != "sitemap":
            continue
        # '#' starts a comment in robots.txt; a sitemap URL has no use for a fragment.
        url = resolve(value.split("#", 1)[0].strip(), base_url)
        if url and url not in found:
            found.append(url)
    return found
