"""Discovery: feeds, sitemaps, listing pages and robots.txt -> `Entry` values.

Pure parsing: bytes in, canonical URLs out; an item whose link wire would
not fetch (malformed, or a backslash or credentials in its host part) comes
out as the link as written with `Entry.refused` saying why, so that it can
be accounted for rather than vanish. No network, no Redis, no clock
(``filter_recent`` takes ``now``). Fetching these documents, conditional GET
and seen-URL state belong to the fetch stage and the pipeline.

Every parser refuses oversized input up front (``DiscoverError``) instead of
building a tree from it, and XML is read with entity expansion, DTD loading
and network access off.
"""

from __future__ import annotations

from worker.discover.base import (
    MAX_FEED_BYTES,
    MAX_HTML_BYTES,
    MAX_SITEMAP_BYTES,
    Entry,
    change_mark,
    dedupe,
    filter_recent,
    read_capped,
    to_utc_iso,
)
from worker.discover.feeds import parse_feed
from worker.discover.html import autodiscover_feeds, parse_listing
from worker.discover.sitemaps import Sitemap, parse_sitemap, sitemaps_from_robots
from worker.discover.sniff import detect_kind
from worker.errors import DiscoverError

__all__ = [
    "MAX_FEED_BYTES",
    "MAX_HTML_BYTES",
    "MAX_SITEMAP_BYTES",
    "DiscoverError",
    "Entry",
    "Sitemap",
    "autodiscover_feeds",
    "change_mark",
    "dedupe",
    "detect_kind",
    "filter_recent",
    "parse_feed",
    "parse_listing",
    "parse_sitemap",
    "read_capped",
    "sitemaps_from_robots",
    "to_utc_iso",
]
