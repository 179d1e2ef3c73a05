"""RSS 0.9x / 1.0 (RDF) / 2.0, Atom (0.3, 1.0) and JSON Feed (1.0, 1.1) -> entries."""

from __future__ import annotations

import json
from typing import Any

from lxml import etree

from worker.discover.base import (
    MAX_FEED_BYTES,
    Entry,
    child_text,
    children,
    clean_text,
    dedupe,
    load_bytes,
    local,
    ns,
    parse_xml,
    refused_entry,
    resolve,
    to_utc_iso,
)
from worker.errors import DiscoverError

ATOM_NS = ("http://www.w3.org/2005/Atom", "http://purl.org/atom/ns#")
# RSS 2.0 and 0.9x have no namespace; RSS 1.0 and 0.90 live in RDF documents.
RSS_NS = (
    "",
    "http://purl.org/rss/1.0/",
    "http://my.netscape.com/rdf/simple/0.9/",
    "http://backend.userland.com/rss2",
)
DC_NS = ("http://purl.org/dc/elements/1.1/", "http://purl.org/dc/terms/")
RDF_NS = "http://www.w3.org/1999/02/22-rdf-syntax-ns#"
FEEDBURNER_NS = ("http://rssnamespace.org/feedburner/ext/1.0",)
_HTML_TYPES = ("", "text/html", "application/xhtml+xml")

FEED_ROOTS = ("rss", "rdf", "feed")


def parse_feed(data: bytes, base_url: str) -> list[Entry]:
    """Entries of an RSS, Atom or JSON Feed document, format auto-detected; raise DiscoverError."""
    data = load_bytes(data, MAX_FEED_BYTES)
    if data.lstrip(b"\xef\xbb\xbf \t\r\n")[:1] == b"{":
        return _json_feed(data, base_url)
    return entries_from_root(parse_xml(data, base_url), base_url)


def entries_from_root(root: etree._Element, base_url: str) -> list[Entry]:
    """Entries from an already parsed feed document (also used for feeds given as sitemaps)."""
    kind = local(root).lower()
    if kind in ("rss", "rdf"):
        items = [el for el in root.iter() if local(el) == "item" and ns(el) in RSS_NS]
        found = (_rss_item(item, base_url) for item in items)
    elif kind == "feed" and ns(root) in ATOM_NS:
        entries = [el for el in root.iter() if local(el) == "entry" and ns(el) in ATOM_NS]
        found = (_atom_entry(entry, base_url) for entry in entries)
    else:
        raise DiscoverError(f"not a feed: root element <{local(root)}>")
    return dedupe(entry for entry in found if entry is not None)


def _rss_item(item: etree._Element, base_url: str) -> Entry | None:
    base = item.base or base_url
    url = (
        # feedburner rewrites <link> to its click tracker; origLink is the article
        resolve(child_text(item, "origLink", FEEDBURNER_NS), base)
        or resolve(child_text(item, "link", RSS_NS), base)
        or _permalink_guid(item, base)
        or _atom_link(item, base)
        or resolve(item.get(f"{{{RDF_NS}}}about"), base)
        # recover=True can nest <link> inside an unclosed sibling: look deeper last
        or next(
            (
                u
                for el in item.iter()
                if local(el) == "link" and ns(el) in RSS_NS
                for u in [resolve(el.text, base)]
                if u
            ),
            None,
        )
    )
    if url is None:
        return refused_entry([child_text(item, "origLink", FEEDBURNER_NS), child_text(item, "link", RSS_NS),
                              child_text(item, "guid", RSS_NS), *_atom_hrefs(item),
                              item.get(f"{{{RDF_NS}}}about")], base)
    published = child_text(item, "pubDate", RSS_NS) or child_text(item, "date", DC_NS)
    lastmod = child_text(item, "modified", DC_NS) or child_text(item, "updated", ATOM_NS)
    return Entry(
        url=url,
        title=clean_text(child_text(item, "title", RSS_NS) or child_text(item, "title", DC_NS)),
        published=to_utc_iso(published),
        lastmod=to_utc_iso(lastmod),
    )


def _permalink_guid(item: etree._Element, base: str) -> str | None:
    for guid in children(item, "guid", RSS_NS):
        # isPermaLink defaults to true; "false" means the guid is only an id.
        if (guid.get("isPermaLink") or "true").strip().lower() != "false":
            return resolve(child_text(item, "guid", RSS_NS), base)
    return None


def _atom_entry(entry: etree._Element, base_url: str) -> Entry | None:
    base = entry.base or base_url
    url = resolve(child_text(entry, "origLink", FEEDBURNER_NS), base) or _atom_link(entry, base)
    if url is None:
        atom_id = child_text(entry, "id", ATOM_NS)
        url = resolve(atom_id, base) if atom_id and atom_id.lower().startswith("http") else None
    if url is None:
        return refused_entry([child_text(entry, "origLink", FEEDBURNER_NS), *_atom_hrefs(entry),
                              child_text(entry, "id", ATOM_NS)], base)
    published = child_text(entry, "published", ATOM_NS) or child_text(entry, "issued", ATOM_NS)
    lastmod = child_text(entry, "updated", ATOM_NS) or child_text(entry, "modified", ATOM_NS)
    return Entry(
        url=url,
        title=_atom_title(entry),
        published=to_utc_iso(published),
        lastmod=to_utc_iso(lastmod),
    )


def _atom_link(el: etree._Element, base: str) -> str | None:
    """The rel=alternate (or rel-less) link, HTML types first; never self, edit or enclosure."""
    alternates: list[tuple[int, etree._Element]] = []
    for link in children(el, "link", ATOM_NS):
        rel = (link.get("rel") or "alternate").strip().lower()
        if rel != "alternate" or not link.get("href"):
            continue
        kind = (link.get("type") or "").split(";")[0].strip().lower()
        alternates.append((0 if kind in _HTML_TYPES else 1, link))
    for _rank, link in sorted(alternates, key=lambda pair: pair[0]):  # stable: document order within a rank
        url = resolve(link.get("href"), link.base or base)
        if url:
            return url
    return None


def _atom_hrefs(el: etree._Element) -> list[str | None]:
    """The href of every Atom link of `el`, for saying why none of them is fetchable."""
    return [link.get("href") for link in children(el, "link", ATOM_NS)]


def _atom_title(entry: etree._Element) -> str | None:
    for title in children(entry, "title", ATOM_NS):
        # type="xhtml" wraps markup in a div: itertext reads through it;
        # type="html" escapes it: clean_text strips the tags.
        return clean_text("".join(title.itertext()))
    return None


def _json_feed(data: bytes, base_url: str) -> list[Entry]:
    try:
        doc = json.loads(data)
    except (ValueError, RecursionError) as exc:
        raise DiscoverError(f"unparseable JSON feed: {exc}") from exc
    if not isinstance(doc, dict) or not isinstance(doc.get("items"), list):
        raise DiscoverError("not a JSON Feed: no items list")
    version = doc.get("version")
    if isinstance(version, str) and not version.startswith(
        ("https://jsonfeed.org/version/", "http://jsonfeed.org/")
    ):
        raise DiscoverError(f"not a JSON Feed: version {version!r}")
    entries = (_json_item(item, base_url) for item in doc["items"] if isinstance(item, dict))
    return dedupe(entry for entry in entries if entry is not None)


def _str(item: dict[str, Any], key: str) -> str | None:
    value = item.get(key)
    return value if isinstance(value, str) else None


def _json_item(item: dict[str, Any], base_url: str) -> Entry | None:
    item_id = _str(item, "id")
    # url is the item's permalink; external_url is what a link-blog post points at.
    url = (
        resolve(_str(item, "url"), base_url)
        or resolve(_str(item, "external_url"), base_url)
        or (resolve(item_id, base_url) if item_id and item_id.lower().startswith("http") else None)
    )
    if url is None:
        return refused_entry([_str(item, "url"), _str(item, "external_url"), item_id], base_url)
    return Entry(
        url=url,
        title=clean_text(_str(item, "title")),
        published=to_utc_iso(_str(item, "date_published")),
        lastmod=to_utc_iso(_str(item, "date_modified")),
    )
