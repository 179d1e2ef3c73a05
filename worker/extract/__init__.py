"""Article extraction: page bytes in, `Article` out (pure: no network, no Redis; the clock only
bounds plausible dates when the caller gives no fetch time).

Pipeline: size/type guards -> decode (decode.py) -> lxml parse -> metadata
(metadata.py: title, language, canonical URL; bylines.py: authors; dates.py
and page_dates.py: publication and update times in the page's offset) ->
layout tables unwrapped and hidden blocks dropped (layout.py) -> main text (body.py, or the source's
``body`` rule in rules.py) -> invisible and mis-decoded characters repaired
(text.py) -> furniture filter (generic rules, the source's ``strip_text``,
and the host's learned ``furniture``: furniture.py) -> byline and date lines above
the story -> wire agency and dateline (wire_patterns.py) -> not-an-article
checks (walls.py).

Which parser where, and why:

- **lxml** (``lxml.html``) parses every page. It builds a tree in ~1 ms for a
  median 115 kB page, ~15x faster than BeautifulSoup, and it is the tree
  trafilatura works on, so the page is parsed once for metadata and main text.
- **trafilatura** (with ``fast=True``) chooses the main text on that tree; we
  add decoding, metadata, wire patterns, wall detection and a furniture filter
  on top, each measured on the dev set.
- **BeautifulSoup** is used only to apply per-source ``rules`` (CSS selectors
  written by operators in ``sources.yaml``): soupsieve gives full, browser-like
  CSS selector support. Its ~19 ms tree build is paid only by sources that have
  rules.

Nothing here raises on bad input: hostile pages come back as an `Article`
with ``not_article`` set (``empty``, ``too_short``, ``not_html``,
``too_large``, ``bot_wall``, ``login_wall``, ``cookie_wall``,
``section_front``).
"""

from __future__ import annotations

import logging
import re
import time
from datetime import UTC, date, datetime, timedelta

from htmldate.extractors import external_date_parser
from lxml import etree
from lxml.html import HtmlComment, HtmlElement, HtmlEntity, HtmlProcessingInstruction, document_fromstring

from worker.models import Article, Rules

from .body import (
    MAX_PARAGRAPH_CHARS,
    MIN_STORY_CHARS,
    SHORT_BODY_CHARS,
    drop_furniture,
    looks_like_a_menu,
    prose_chars,
    prose_share,
    trafilatura_paragraphs,
)
from .bylines import is_byline_line, is_person_name, parse_byline
from .decode import decode_html
from .furniture import Template
from .layout import drop_hidden, drop_scripts, unwrap_layout_tables
from .metadata import Metadata, extract_metadata
from .page_dates import fallback_dates, is_date_line, localise
from .repeats import restore_repeats
from .rules import apply_strip, rule_body
from .text import clean_inline
from .walls import is_listing_body, is_section_front, sniff_not_html, wall_reason
from .wire_patterns import credit_agency, dateline

__all__ = ["extract", "extract_dict", "warm_up", "MAX_HTML_BYTES", "MAX_ELEMENTS"]

# Real article pages are under 3 MB (the dev set's largest is 1.5 MB); past
# this the page is a dump or an attack and extraction would exceed its budget.
MAX_HTML_BYTES = 8_000_000
# Trees beyond this many elements take trafilatura over the 2 s budget (the
# dev set's largest page has under 2,000 elements).
MAX_ELEMENTS = 25_000
# libxml2 checks attributes for duplicates in quadratic time: a start tag of
# megabytes of attributes takes minutes. No real tag is this long (inline
# data: images come close, and images are not text), so such tags lose their
# attributes before parsing.
_HUGE_TAG_CHARS = 20000
_HUGE_TAG = re.compile(r"<([a-zA-Z][\w:-]*)[^<>]{20000,}>")
# fewer words than this is no story (a stray "t" left by a broken page), while a
# one-line wire flash ("Magnitude 7.1 quake strikes off Japan") still passes
MIN_BODY_WORDS = 5

_COUNT_ELEMENTS = etree.XPath("count(//*)")
_PARSER = etree.HTMLParser(encoding="utf-8", remove_comments=True, remove_pis=True, collect_ids=False, huge_tree=False)
# Every element an HtmlElement, chosen in C: lxml.html's own parser picks each element's class (forms,
# inputs, labels) in a Python callback, run for every element proxy trafilatura and we create: 7% of
# extraction time. Nothing here uses the form classes.
_PARSER.set_element_class_lookup(etree.ElementDefaultClassLookup(
    element=HtmlElement, comment=HtmlComment, pi=HtmlProcessingInstruction, entity=HtmlEntity))
_LOG = logging.getLogger(__name__)
_WORD = re.compile(r"\w+")


def _not_article(reason: str, md: Metadata | None = None, body: str = "") -> Article:
    if md is None:
        return Article(title=None, body=body, not_article=reason)
    return Article(
        title=md.title, body=body, authors=md.authors, published_at=md.published_at, modified_at=md.modified_at,
        language=md.language, canonical_url=md.canonical_url, not_article=reason,
    )


def _parse(text: str) -> HtmlElement | None:
    try:
        return document_fromstring(text.encode("utf-8", "replace"), parser=_PARSER)
    except (etree.ParserError, ValueError, etree.XMLSyntaxError):
        return None


def extract(
    html: bytes,
    url: str | None = None,
    *,
    charset: str | None = None,
    rules: Rules | None = None,
    fetched_at: float | None = None,
    furniture: Template | None = None,
) -> Article:
    """Extract the article (clean body text and metadata) from one page's bytes.

    `fetched_at` (unix seconds) bounds the dates believed: none later than the
    day after the fetch (the current time when not given). `furniture` is the
    host's learned furniture (`extract.furniture`, learned from many pages of
    the host): the lines it drops are listed in the article's `furniture`.
    """
    if not html or not html.strip():
        return _not_article("empty")
    if len(html) > MAX_HTML_BYTES:
        return _not_article("too_large")
    binary = sniff_not_html(html)
    if binary:
        return _not_article(binary)
    text, _codec = decode_html(html, charset)
    if "<" not in text[:65536]:
        return _not_article("not_html")
    text = _without_huge_tags(text)
    if rules and rules.strip and not rules.body:
        text = apply_strip(text, rules)
    tree = _parse(text)
    if tree is None:
        return _not_article("empty")
    if _COUNT_ELEMENTS(tree) > MAX_ELEMENTS:
        return _not_article("too_large")
    latest = _latest_day(fetched_at)
    md = extract_metadata(tree, url, latest, text)
    if md.published_at is None:
        # on the page as it came (the main-text step marks links and unwraps layout tables)
        md.published_at, modified = fallback_dates(tree, text, url, latest, tree.get("lang") or md.language)
        md.modified_at = md.modified_at or modified
    else:
        md.published_at = localise(md.published_at, text, url, tree)
        md.modified_at = localise(md.modified_at, text, None)

    hints = ""
    paragraphs = rule_body(text, rules) if rules and rules.body else None
    if paragraphs is None:
        try:
            unwrap_layout_tables(tree)
            hints = drop_scripts(tree)
            drop_hidden(tree)
            paragraphs = trafilatura_paragraphs(tree, url)
            short = sum(len(p) for p in paragraphs) < SHORT_BODY_CHARS
            if short or looks_like_a_menu(paragraphs):
                thorough = trafilatura_paragraphs(tree, url, fast=False, marked=True)
                if short and sum(len(p) for p in thorough) > sum(len(p) for p in paragraphs) or (
                    not short
                    and prose_share(thorough) >= 2 * prose_share(paragraphs)
                    and prose_chars(thorough) >= MIN_STORY_CHARS
                ):
                    paragraphs = thorough
            paragraphs = restore_repeats(tree, text, paragraphs)
        except (RecursionError, ValueError, TypeError, etree.LxmlError) as exc:
            # trafilatura on a pathological tree: best effort is no body.
            _LOG.debug("main-text extraction failed: %s", exc)
            paragraphs = []
    paragraphs = [line for line in (clean_inline(p[:MAX_PARAGRAPH_CHARS]).strip() for p in paragraphs) if line]
    paragraphs = drop_furniture(paragraphs, rules.strip_text if rules else ())
    paragraphs, learned = furniture.apply(paragraphs) if furniture else (paragraphs, ())
    paragraphs = _drop_leading_headline_and_dek(paragraphs, md)
    paragraphs, header = _drop_leading_byline_and_date(paragraphs)
    if not md.authors:
        # "Jane Doe, Reuters" over the story: a byline without "By" or markup
        for line in header:
            names, found = parse_byline(line)
            if names:
                md.authors, md.agency = tuple(names), md.agency or found
                break
    body = "\n\n".join(paragraphs)

    if len(body) < 1500:
        # trafilatura worked on a copy: the page's own tree tells walls from short stories
        reason = wall_reason(tree, md.title, body, hints)
        if reason is None and is_section_front(tree, body, md.is_article_typed):
            reason = "section_front"
        if reason:
            return _not_article(reason, md, body)
    if is_listing_body(paragraphs, md.is_article_typed):
        return _not_article("section_front", md, body)
    if not body:
        return _not_article("empty", md)
    if len(_WORD.findall(body, 0, 200)) < MIN_BODY_WORDS:
        return _not_article("too_short", md, body)

    place, agency = _opening_dateline(paragraphs)
    agency = agency or md.agency or credit_agency(paragraphs)
    authors = tuple(a for a in md.authors if is_person_name(a))
    return Article(
        title=md.title,
        body=body,
        authors=authors,
        agency=agency,
        dateline=place,
        published_at=md.published_at,
        modified_at=md.modified_at,
        language=md.language,
        canonical_url=md.canonical_url,
        not_article=None,
        furniture=learned,
    )


def _drop_leading_byline_and_date(paragraphs: list[str]) -> tuple[list[str], list[str]]:
    """Byline and date lines above the story (old layouts keep them in the story's cell) are not its
    text: ``(story, those lines)``."""
    start = 0
    while start < min(len(paragraphs) - 1, 4) and (
        is_byline_line(paragraphs[start]) or is_date_line(paragraphs[start])
    ):
        start += 1
    return paragraphs[start:], paragraphs[:start]


# How far down the first paragraph of prose is looked for: short lines above it (a byline, a date
# line, headlines of a sidebar the page's layout left next to the story) are not the lede.
_LEDE_SEARCH = 40
_PROSE_CHARS = 150


def _opening_dateline(paragraphs: list[str]) -> tuple[str | None, str | None]:
    """The dateline of the story's first paragraph of prose (short lines may come before it: a byline,
    a date line, a sidebar's headlines)."""
    for para in paragraphs[:_LEDE_SEARCH]:
        place, agency = dateline(para)
        if place or agency or len(para) > _PROSE_CHARS:
            return place, agency
    return None, None


def _latest_day(fetched_at: float | None) -> date:
    """The last plausible publication day: the day after the fetch, in UTC (a page's zone is at most +14 h)."""
    when = datetime.fromtimestamp(time.time() if fetched_at is None else fetched_at, UTC)
    return when.date() + timedelta(days=1)


def _without_huge_tags(text: str) -> str:
    """`text` with attribute-bloated start tags emptied. The regex costs ~1 ms on every page; splitting
    on "<" tells in a fifth of that whether any tag is long enough to need it."""
    chunks = text.split("<")
    if max(map(len, chunks)) < _HUGE_TAG_CHARS or not any(
        len(chunk) >= _HUGE_TAG_CHARS and not 0 <= chunk.find(">") < _HUGE_TAG_CHARS for chunk in chunks
    ):
        return text
    return _HUGE_TAG.sub(r"<\1>", text)


def _key(text: str | None) -> str:
    return " ".join(_WORD.findall((text or "").casefold()))


def _drop_leading_headline_and_dek(paragraphs: list[str], md: Metadata) -> list[str]:
    """The headline repeated above the story is not body text.

    (Dropping a first paragraph equal to the page's og:description was
    measured too: descriptions are usually the story's own first paragraph,
    so it cost more recall than it gained precision.)
    """
    if len(paragraphs) > 1 and _key(paragraphs[0]) == _key(md.title):
        return paragraphs[1:]
    # Old layouts: the headline further down, over a byline or a date line, starts the story; the
    # short lines above it (a sidebar's headlines, a breadcrumb) are the page around it.
    title = _key(md.title)
    if title:
        for i, para in enumerate(paragraphs[1:_LEDE_SEARCH], 1):
            if len(para) > _PROSE_CHARS:
                break
            if _key(para) == title and i + 2 < len(paragraphs) and (
                is_byline_line(paragraphs[i + 1]) or is_date_line(paragraphs[i + 1])
            ):
                return paragraphs[i + 1:]
    return paragraphs



_WARM_UP_PAGE = (
    b"<html><body><article><p>Stand-in story text, long enough to be read as one paragraph of prose.</p>"
    b"</article></body></html>"
)


def warm_up() -> None:
    """Pay once, when a worker process starts, what its first pages would otherwise pay.

    htmldate's extensive search hands date expressions it cannot read itself to
    dateparser, which loads every locale the first time an expression matches
    none of them (about 1.4 s, once per process).
    """
    external_date_parser("qqzx 24 vvkw 2020 09:22", "%Y-%m-%d")
    extract(_WARM_UP_PAGE, "https://example.com/warm-up")


def extract_dict(html: bytes, url: str | None = None) -> dict[str, object]:
    """`extract` as a plain dict (the shape benchmark scorers read: body, title, authors, published)."""
    out = extract(html, url).to_json()
    out["published"] = out["published_at"]
    return out
