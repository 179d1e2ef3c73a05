"""Shared pieces of discovery: the Entry value, size caps, safe XML, dates."""

from __future__ import annotations

import html
import re
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from urllib.parse import urlsplit

from lxml import etree

from worker.errors import BadURL, DiscoverError
from worker.urls import canonicalize, redact

MB = 1024 * 1024
# A real feed is well under 1 MB; 20 MB leaves room for full-text feeds while
# refusing a hostile or runaway document before lxml builds a tree from it.
MAX_FEED_BYTES = 20 * MB
# The sitemaps.org protocol caps a sitemap at 50 MB uncompressed.
MAX_SITEMAP_BYTES = 50 * MB
# Listing and home pages; fetch already caps bodies lower than this.
MAX_HTML_BYTES = 20 * MB

GZIP_MAGIC = b"\x1f\x8b"
MAX_REFUSED_LINK = 2048  # characters of a refused link kept, for the trail and the log


@dataclass(frozen=True)
class Entry:
    """One URL found by discovery, with what the document said about it."""

    url: str  # canonical (worker.urls.canonicalize); with `refused`, the link as the document gave it
    title: str | None = None
    published: str | None = None  # ISO-8601 UTC, e.g. 2024-05-01T12:00:00Z
    lastmod: str | None = None  # ISO-8601 UTC
    refused: str | None = None  # why the document's link for this entry is not fetched (then never a candidate)


def read_capped(chunks: Iterable[bytes], max_bytes: int) -> bytes:
    """Join a stream of chunks, raising DiscoverError as soon as it exceeds `max_bytes`."""
    out = bytearray()
    for chunk in chunks:
        out += chunk
        if len(out) > max_bytes:
            raise DiscoverError(f"document larger than {max_bytes} bytes")
    return bytes(out)


def check_size(data: bytes, max_bytes: int) -> None:
    if len(data) > max_bytes:
        raise DiscoverError(f"document larger than {max_bytes} bytes ({len(data)})")


def gunzip_capped(data: bytes, max_bytes: int) -> bytes:
    """Decompress gzip (several members allowed), never producing more than `max_bytes`."""
    out = bytearray()
    rest = data
    try:
        while rest[:2] == GZIP_MAGIC:
            inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
            buf = rest
            while buf:
                # max_length bounds memory: a bomb stops one byte past the cap.
                out += inflater.decompress(buf, max_bytes + 1 - len(out))
                if len(out) > max_bytes:
                    raise DiscoverError(f"gzip expands beyond {max_bytes} bytes")
                buf = inflater.unconsumed_tail
            if not inflater.eof:
                break  # truncated download: keep what we have, recover=True parses it
            rest = inflater.unused_data
    except zlib.error as exc:
        raise DiscoverError(f"corrupt gzip: {exc}") from exc
    return bytes(out)


def load_bytes(data: bytes, max_bytes: int) -> bytes:
    """Apply the size cap, gunzipping first when the bytes are gzip."""
    check_size(data, max_bytes)
    if data[:2] == GZIP_MAGIC:
        data = gunzip_capped(data, max_bytes)
    return data


# ------------------------------------------------------------------ safe XML

_DOCTYPE = re.compile(rb"<!DOCTYPE[^>\[]*\[", re.IGNORECASE)
_ENTITY = re.compile(rb"<!ENTITY", re.IGNORECASE)


def ascii_view(data: bytes) -> bytes:
    """The document as ASCII-compatible bytes, so byte patterns also catch UTF-16 input."""
    head = data[:4]
    if head[:2] in (b"\xff\xfe", b"\xfe\xff") or (len(head) == 4 and (head[0] == 0 or head[1] == 0)):
        return data.decode("utf-16", errors="replace").encode("utf-8", errors="replace")
    return data


def declares_entities(data: bytes) -> bool:
    """True when a DOCTYPE has an internal subset declaring entities (billion laughs, XXE)."""
    view = ascii_view(data)
    match = _DOCTYPE.search(view, 0, 64 * 1024)
    # Deliberately coarse: once an internal subset exists, any <!ENTITY in the
    # document refuses it. Feeds and sitemaps never need one.
    return match is not None and _ENTITY.search(view, match.start()) is not None


_BARE_AMP = re.compile(rb"&(?!#[0-9]+;|#[xX][0-9a-fA-F]+;|[A-Za-z_][\w.-]*;)")


def _parser(*, recover: bool) -> etree.XMLParser:
    # A new parser per document: lxml parsers are not safe to share across threads.
    return etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        huge_tree=False,
        load_dtd=False,
        recover=recover,
        remove_comments=True,
        remove_pis=True,
    )


def parse_xml(data: bytes, base_url: str) -> etree._Element:
    """Parse untrusted XML: no entity expansion, no DTD, no network, tolerant of small errors."""
    if declares_entities(data):
        raise DiscoverError("XML DOCTYPE declares entities; refused")
    try:
        root = etree.fromstring(data, _parser(recover=False), base_url=base_url)
    except etree.XMLSyntaxError:
        # Feeds in the wild have bare '&' and unclosed tags. Escaping bare
        # ampersands first keeps "Profits & losses" intact; it is only done on
        # this retry because it would alter '&' inside valid CDATA.
        try:
            root = etree.fromstring(_BARE_AMP.sub(b"&amp;", data), _parser(recover=True), base_url=base_url)
        except (etree.XMLSyntaxError, ValueError) as exc:
            raise DiscoverError(f"unparseable XML: {exc}") from exc
    except ValueError as exc:  # e.g. an encoding lxml does not know
        raise DiscoverError(f"unparseable XML: {exc}") from exc
    if root is None:
        raise DiscoverError("unparseable XML: no root element")
    dtd = root.getroottree().docinfo.internalDTD
    if dtd is not None and any(True for _ in dtd.iterentities()):
        raise DiscoverError("XML DOCTYPE declares entities; refused")
    return root


def local(el: etree._Element) -> str:
    """Local name of an element ('' for comments, entities and PIs)."""
    tag = el.tag
    return tag.rpartition("}")[2] if isinstance(tag, str) else ""


def ns(el: etree._Element) -> str:
    tag = el.tag
    return tag[1:].partition("}")[0] if isinstance(tag, str) and tag.startswith("{") else ""


def children(
    el: etree._Element, name: str, namespaces: Iterable[str] | None = None
) -> Iterator[etree._Element]:
    """Direct children by local name, optionally restricted to namespaces."""
    allowed = None if namespaces is None else set(namespaces)
    for child in el:
        if local(child) == name and (allowed is None or ns(child) in allowed):
            yield child


def child_text(el: etree._Element, name: str, namespaces: Iterable[str] | None = None) -> str | None:
    for child in children(el, name, namespaces):
        text = clean_text("".join(child.itertext()))
        if text:
            return text
    return None


_TAG = re.compile(r"</?[A-Za-z][^<>]*>")


def clean_text(text: str | None) -> str | None:
    """Collapse whitespace, drop HTML tags and entities that feeds escape twice."""
    if text is None:
        return None
    text = html.unescape(_TAG.sub(" ", text))
    text = " ".join(text.split())
    return text or None


def resolve(href: str | None, base: str) -> str | None:
    """Canonical absolute URL, or None for empty, non-http(s) and malformed links (see `_resolved`)."""
    return _resolved(href, base)[0]


def _resolved(href: str | None, base: str) -> tuple[str | None, str | None]:
    """(canonical URL, None) for a link wire fetches, else (None, why not).

    Besides what `canonicalize` refuses, an authority with a backslash or
    userinfo is refused as written: canonicalising would keep the host after
    the `@`, where a server behind the backslash may have been the one meant
    (two parsers, two hosts; see fetch.guard.check_url).
    """
    if not href or not href.strip():
        return None, "empty link"
    try:
        absolute = canonicalize(href, base=base)
        authority = urlsplit(href.strip()).netloc
    except (BadURL, ValueError) as exc:
        return None, str(exc) or type(exc).__name__
    if "\\" in authority or "@" in authority:
        return None, f"a backslash or credentials in the host part of {redact(href.strip())}"
    return absolute, None


def refused_entry(links: Iterable[str | None], base: str) -> Entry | None:
    """An entry for an item none of whose `links` is fetchable: the first absolute http(s) one and why.

    None when the item has no such link at all (nothing a reader would call a URL: no record is kept).
    """
    for link in links:
        text = (link or "").strip()
        if text.lower().startswith(("http://", "https://")):
            why = _resolved(text, base)[1]
            if why:  # kept as text that encodes: a JSON feed may carry a lone surrogate
                shown = text[:MAX_REFUSED_LINK].encode("utf-8", "replace").decode("utf-8")
                return Entry(url=shown, refused=why)
    return None


def latest(*stamps: str | None) -> str | None:
    """The latest of ISO-8601 UTC stamps (`to_utc_iso`'s, which sort as text), None when none is given."""
    given = [s for s in stamps if s]
    return max(given) if given else None


def merge(first: Entry, other: Entry) -> Entry:
    """Two entries of one URL as one: the first's title and publication date unless it lacks them, and the
    latest lastmod of the two (a feed item without one must not hide a sitemap's that moved)."""
    return Entry(url=first.url, title=first.title or other.title, published=first.published or other.published,
                 lastmod=latest(first.lastmod, other.lastmod))


def dedupe(entries: Iterable[Entry]) -> list[Entry]:
    """One entry per URL, in order of first appearance, each merging all of that URL's entries (`merge`)."""
    out: dict[str, Entry] = {}
    for entry in entries:
        known = out.get(entry.url)
        out[entry.url] = entry if known is None else merge(known, entry)
    return list(out.values())


def change_mark(entry: Entry) -> str | None:
    """The latest date an entry gives its page (lastmod or publication date): when it moves, the page changed."""
    return latest(entry.lastmod, entry.published)


# ------------------------------------------------------------------ dates

_W3C_PARTIAL = re.compile(r"^(\d{4})(?:-(\d{2}))?$")


def to_utc_iso(value: str | None) -> str | None:
    """RFC 822 / RFC 3339 / W3C datetime -> '2024-05-01T12:00:00Z'; None when unparseable."""
    if not value:
        return None
    value = value.strip()
    if not value:
        return None
    parsed = _parse_date(value)
    if parsed is None:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)  # no zone given: sitemaps and feeds mean UTC
    return parsed.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse_date(value: str) -> datetime | None:
    partial = _W3C_PARTIAL.match(value)
    if partial:
        return datetime(int(partial[1]), int(partial[2] or 1), 1)
    if value[:4].isdigit():
        iso = value.replace(" ", "T", 1) if len(value) > 10 and value[10] == " " else value
        try:
            return datetime.fromisoformat(iso.upper())
        except ValueError:
            pass
    try:
        return parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None


def iso_to_epoch(value: str) -> float | None:
    try:
        return datetime.fromisoformat(value).timestamp()
    except ValueError:
        return None


def filter_recent(entries: Iterable[Entry], now: float, max_age_seconds: float) -> list[Entry]:
    """Entries whose newest date (lastmod or published) is within `max_age_seconds`; undated kept."""
    cutoff = now - max_age_seconds
    kept: list[Entry] = []
    for entry in entries:
        stamps = [t for t in (entry.lastmod, entry.published) if t]
        epochs = [e for e in (iso_to_epoch(t) for t in stamps) if e is not None]
        # An updated old story is still news (an update event); so the newest date counts.
        if not epochs or max(epochs) >= cutoff:
            kept.append(entry)
    return kept
