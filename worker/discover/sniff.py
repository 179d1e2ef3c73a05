"""Tell feeds, sitemaps and HTML apart from their first bytes.

The content wins over the Content-Type header: servers routinely send feeds
as text/html or text/plain and sitemaps as application/octet-stream.
"""

from __future__ import annotations

import re
import zlib

from worker.discover.base import GZIP_MAGIC, ascii_view

SNIFF_BYTES = 8 * 1024

# Skip the XML declaration, comments, PIs and the DOCTYPE to reach the root element.
_PROLOG = re.compile(
    rb"\s*(?:<\?.*?\?>|<!--.*?-->|<!DOCTYPE[^>\[]*(?:\[.*?\])?\s*>\s*)", re.DOTALL | re.IGNORECASE
)
_ROOT = re.compile(rb"\s*<([A-Za-z_][\w.:-]*)")

_FEED_ROOTS = frozenset({"rss", "rdf", "feed", "channel"})
_SITEMAP_ROOTS = frozenset({"urlset", "sitemapindex"})


def _head(data: bytes) -> bytes:
    head = data[:SNIFF_BYTES]
    if head[:2] == GZIP_MAGIC:
        try:
            # Only the first bytes: sniffing must not inflate a bomb.
            head = zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(data[: SNIFF_BYTES * 4], SNIFF_BYTES)
        except zlib.error:
            return b""
    return ascii_view(head).lstrip(b"\xef\xbb\xbf \t\r\n")


def _root_name(head: bytes) -> str | None:
    pos = 0
    while True:
        match = _PROLOG.match(head, pos)
        if not match or match.end() == pos:
            break
        pos = match.end()
    root = _ROOT.match(head, pos)
    return root[1].decode("ascii", "replace").rpartition(":")[2].lower() if root else None


def detect_kind(data: bytes, content_type: str | None) -> str:
    """'feed', 'sitemap' or 'html', from the content first and the Content-Type second."""
    head = _head(data)
    if head[:1] == b"{":
        return "feed"  # JSON Feed; other JSON is rejected by parse_feed with a reason
    root = _root_name(head)
    if root in _FEED_ROOTS:
        return "feed"
    if root in _SITEMAP_ROOTS:
        return "sitemap"
    if root == "html" or re.match(rb"<!doctype\s+html", head, re.IGNORECASE):
        return "html"
    ctype = (content_type or "").split(";")[0].strip().lower()
    if ctype in (
        "application/rss+xml",
        "application/atom+xml",
        "application/feed+json",
        "application/rdf+xml",
    ):
        return "feed"
    if data[:2] == GZIP_MAGIC or (
        ctype == "text/plain" and head.lower().startswith((b"http://", b"https://"))
    ):
        return "sitemap"  # gzip at rest and one-URL-per-line text are sitemap shapes
    return "html"
