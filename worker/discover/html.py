"""HTML pages: article links from a listing page, feeds advertised by a home page.

BeautifulSoup's ``select`` (soupsieve) rather than lxml.cssselect: bs4 is a
core dependency already, cssselect would be one more; soupsieve supports CSS
level 4 (``:is()``, ``:has()``) and is what the extraction rules use, so a
selector in sources.yaml means the same thing everywhere. The ``lxml`` tree
builder keeps parsing fast and tolerant of broken markup.
"""

from __future__ import annotations

from urllib.parse import urljoin

from bs4 import BeautifulSoup, Tag
from soupsieve import SelectorSyntaxError

from worker.discover.base import MAX_HTML_BYTES, Entry, check_size, clean_text, dedupe, refused_entry, resolve
from worker.errors import DiscoverError

FEED_TYPES = frozenset({"application/rss+xml", "application/atom+xml", "application/feed+json"})


def _soup(html: bytes) -> BeautifulSoup:
    check_size(html, MAX_HTML_BYTES)
    # bytes, not str: bs4 then honours <meta charset> and BOMs itself.
    return BeautifulSoup(html, "lxml")


def _page_base(soup: BeautifulSoup, base_url: str) -> str:
    """<base href> overrides the page URL for relative links, when it is http(s)."""
    tag = soup.find("base", href=True)
    href = tag.get("href") if isinstance(tag, Tag) else None
    if isinstance(href, str) and href.strip():
        candidate = urljoin(base_url, href.strip())
        if candidate.lower().startswith(("http://", "https://")):
            return candidate
    return base_url


def parse_listing(html: bytes, base_url: str, selector: str) -> list[Entry]:
    """Article links matched by a CSS `selector`, resolved, canonical and de-duplicated in order."""
    soup = _soup(html)
    try:
        matches = soup.select(selector)
    except (SelectorSyntaxError, ValueError) as exc:
        raise DiscoverError(f"bad CSS selector {selector!r}: {exc}") from exc
    base = _page_base(soup, base_url)
    entries: list[Entry] = []
    for match in matches:
        # The selector may name the <a> or a container (an <article> card).
        link = (
            match
            if match.name in ("a", "area") and match.get("href")
            else match.find(["a", "area"], href=True)
        )
        if not isinstance(link, Tag):
            continue
        href = link.get("href")
        url = resolve(href if isinstance(href, str) else None, base)
        if url is None:  # javascript:, mailto:, '#' are no links to record; a malformed http(s) one is
            refused = refused_entry([href if isinstance(href, str) else None], base)
            if refused is not None:
                entries.append(refused)
            continue
        title_attr = link.get("title")
        title = clean_text(link.get_text(" ")) or clean_text(
            title_attr if isinstance(title_attr, str) else None
        )
        entries.append(Entry(url=url, title=title))
    return dedupe(entries)


def autodiscover_feeds(html: bytes, base_url: str) -> list[str]:
    """Feed URLs advertised with <link rel="alternate" type="application/{rss,atom}+xml|feed+json">."""
    soup = _soup(html)
    base = _page_base(soup, base_url)
    found: list[str] = []
    for link in soup.find_all("link", href=True):
        rel = link.get("rel")
        # bs4 gives multi-valued attributes such as rel as a list
        rels: list[str] = rel.split() if isinstance(rel, str) else [str(r) for r in rel or []]
        if "alternate" not in {r.lower() for r in rels}:
            continue
        kind = str(link.get("type") or "").split(";")[0].strip().lower()
        if kind not in FEED_TYPES:
            continue
        href = link.get("href")
        url = resolve(href if isinstance(href, str) else None, base)
        if url and url not in found:
            found.append(url)
    return found
