"""Page metadata from the lxml tree: title, authors, dates, language, canonical URL.

Evidence is read in order of how deliberately a publisher wrote it:
JSON-LD (``NewsArticle`` and friends) > ``<meta>`` tags (OpenGraph,
``article:*``, Dublin Core, Parse.ly, Sailthru) > visible markup
(``<h1>``, ``<time>``, ``rel=author``) > ``<title>``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from html import unescape
from typing import Any
from urllib.parse import urljoin, urlsplit

from lxml.html import HtmlElement

from .bylines import markup_byline, parse_byline, text_byline
from .dates import normalise
from .text import clean_inline
from .wire_patterns import agency_name

_ARTICLE_TYPES = {
    "article", "newsarticle", "reportagenewsarticle", "analysisnewsarticle", "opinionnewsarticle",
    "backgroundnewsarticle", "reviewnewsarticle", "blogposting", "liveblogposting", "socialmediaposting",
    "techarticle", "scholarlyarticle", "report", "webpage", "medicalwebpage", "creativework",
}
_PUBLISHED_META = (
    "article:published_time", "og:article:published_time", "article:published", "datepublished",
    "pubdate", "publishdate", "publish-date", "publish_date", "date", "dc.date.issued", "dc.date",
    "dcterms.created", "dcterms.date", "sailthru.date", "parsely-pub-date", "og:published_time",
    "cxenseparse:recs:publishtime", "article.published", "originalpublicationdate",
)
_MODIFIED_META = (
    "article:modified_time", "og:article:modified_time", "og:updated_time", "datemodified",
    "lastmod", "last-modified", "dcterms.modified", "article:modified", "modified_time",
)
_AUTHOR_META = (
    "author", "article:author", "article:author_name", "author_name", "parsely-author", "sailthru.author", "dc.creator",
    "dc:creator", "dcterms.creator", "dcterms:creator", "byl", "og:article:author", "cxenseparse:author",
)
_TITLE_SEPARATORS = re.compile(r"\s+(?:[|\-–—:·•»«/~]|::|\\\\)\s+")
# Old sites separate site and headline with "--", which headlines use too ("Dress -- STOLEN!!!").
_DOUBLE_HYPHEN = re.compile(r"\s+--\s+|(?<=\w):\s+")
_ANY_SEPARATOR = re.compile(r"(\s+--\s+|(?<=\w):\s+|\s+(?:[|\-–—·•»«/~]|::)\s+)")
# Site names open with these; people's names do not ("Le Monde", "El País", "Die Zeit").
_ARTICLES = {"the", "le", "la", "les", "el", "los", "las", "il", "lo", "die", "der", "das", "de", "het", "o", "a", "os"}
_WORDS = re.compile(r"\w{4,}")  # words that say something: not "the", "and", "for"
_LANG = re.compile(r"^([a-zA-Z]{2,3})(?:[-_][a-zA-Z0-9]{2,8})*$")
_WS = re.compile(r"\s+")
# XHTML pages wrap script contents in CDATA sections or HTML comments.
_JSON_WRAPPER = re.compile(r"^\s*(?://\s*)?(?:<!\[CDATA\[|<!--)|(?://\s*)?(?:\]\]>|-->)\s*$")


@dataclass
class Metadata:
    title: str | None = None
    authors: tuple[str, ...] = ()
    published_at: str | None = None
    modified_at: str | None = None
    language: str | None = None
    canonical_url: str | None = None
    site_name: str | None = None
    agency: str | None = None  # from structured data (author/sourceOrganization)
    is_article_typed: bool = False  # JSON-LD article type or og:type=article
    meta: dict[str, str] = field(default_factory=dict)


def _norm(text: str | None) -> str:
    return _WS.sub(" ", clean_inline(text or "")).strip()


def read_meta(tree: HtmlElement) -> dict[str, str]:
    """``<meta>`` name/property -> first content, lower-cased keys."""
    found: dict[str, str] = {}
    for el in tree.iter("meta"):
        content = el.get("content")
        if not content:
            continue
        # RDFa allows several properties in one attribute: property="dc:creator twitter:site_name"
        keys = (el.get("property") or el.get("name") or el.get("itemprop") or el.get("http-equiv") or "").lower().split()
        for key in keys:
            found.setdefault(key, content.strip())
    return found


def json_ld_objects(tree: HtmlElement) -> Iterator[dict[str, Any]]:
    """Every JSON object in the page's JSON-LD scripts, ``@graph`` flattened."""
    for script in tree.iter("script"):
        if (script.get("type") or "").strip().lower() != "application/ld+json" or not script.text:
            continue
        try:
            data = json.loads(_JSON_WRAPPER.sub("", script.text).strip().rstrip(";"), strict=False)
        except ValueError:
            continue
        stack = [data]
        while stack:
            item = stack.pop()
            if isinstance(item, list):
                stack.extend(reversed(item))
            elif isinstance(item, dict):
                graph = item.get("@graph")
                if isinstance(graph, list):
                    stack.extend(reversed(graph))
                yield item


def _types(obj: dict[str, Any]) -> set[str]:
    raw = obj.get("@type")
    values = raw if isinstance(raw, list) else [raw]
    return {str(v).lower() for v in values if v}


def _names(value: Any, by_id: dict[str, dict[str, Any]] | None = None) -> Iterator[tuple[str, bool]]:
    """``(name, is_person)`` for a JSON-LD author-like value. `by_id` resolves references: Yoast (on
    most WordPress sites) writes the author as ``{"@id": ...}`` and the Person elsewhere in the graph."""
    for item in value if isinstance(value, list) else [value]:
        if isinstance(item, str):
            yield unescape(item), True
        elif isinstance(item, dict):
            ref = item.get("@id")
            if "name" not in item and by_id and isinstance(ref, str):
                item = by_id.get(ref, item)
            name = item.get("name")
            if isinstance(name, list):
                name = " ".join(str(n) for n in name)
            if isinstance(name, str):
                # some CMSs escape names twice: "H&#233;ctor" in JSON
                yield unescape(name), "organization" not in _types(item) and "newsmediaorganization" not in _types(item)


def _name_key(text: str) -> str:
    return " ".join(re.findall(r"\w+", text.casefold()))


def _own_site(key: str, host: str) -> bool:
    """A site named like a person, at that name's domain: "Haki Benita" at hakibenita.com ("Le Monde" at
    lemonde.fr opens with an article, as no person's name does)."""
    words = key.split()
    return len(words) >= 2 and words[0] not in _ARTICLES and key.replace(" ", "") in host


def _not_site(names: list[str], sites: set[str]) -> list[str]:
    """`names` without the site's name, alone or ahead of a section ("Site Name Andalucía")."""
    keys = [(_name_key(n), n) for n in names]
    return [n for key, n in keys if not any(key == s or key.startswith(s + " ") for s in sites)]


def _dedupe(names: list[str]) -> tuple[str, ...]:
    seen: dict[str, str] = {}
    for name in names:
        seen.setdefault(name.casefold(), name)
    return tuple(seen.values())


def _headline_h1(tree: HtmlElement, title: str) -> str | None:
    """The ``<h1>`` that is the headline: the one the ``<title>`` repeats, else the first. Pages put their
    logo, site or section name in an ``<h1>`` too ("V8"), often before the headline's."""
    h1s = [text for text in (_norm(el.text_content()).rstrip("¶#").strip() for el in tree.iter("h1")) if text]
    return next((text for text in h1s if _title_repeats(title, text)), h1s[0] if h1s else None)


def _title_repeats(title: str, h1: str) -> bool:
    """Whether the ``<title>`` repeats the ``<h1>`` (ten characters at least: not a one-word section name)."""
    return len(h1) >= 10 and h1.casefold() in title.casefold()


def _title_beats_h1(tree: HtmlElement, title: str, h1: str) -> bool:
    """Whether the ``<title>`` is the headline rather than an ``<h1>`` it does not repeat ("Allergies Health
    Center"): the two share no word, the ``<title>`` has a part of a headline's length (four words or
    more: "Google - Site Reliability Engineering" is labels), and the page does not show it again and
    again as its name (masthead, footer) where a headline is shown at most once."""
    if _title_repeats(title, h1):
        return False
    folded = title.casefold()
    longest = max(_TITLE_SEPARATORS.split(title), key=lambda part: len(part.split()))
    if len(longest.split()) < 4 or set(_WORDS.findall(folded)) & set(_WORDS.findall(h1.casefold())):
        return False
    body = tree.find("body")
    return not (body is not None and _norm(body.text_content()).count(title) > 1)


def clean_title(title: str, site_names: list[str], h1: str | None) -> str:
    """Drop the site-name suffix and section prefix (``"Politics | Title - Site"``)."""
    title = _norm(title)
    if h1 and len(h1) >= 10 and h1 in title:
        # the headline the page shows: all of the title, or the part of it without the site's labels
        return h1
    parts = _TITLE_SEPARATORS.split(title)
    if len(parts) == 1:
        return title
    sites = {_norm(s).casefold() for s in site_names if s}
    kept = [p for p in parts if p.casefold() not in sites and not _looks_like_domain(p)]
    if len(kept) == len(parts):
        # Unknown site name: the longest segment is the headline when the
        # rest are short labels (site name, section).
        longest = max(parts, key=len)
        if (
            all(len(p.split()) <= 4 and not _continues(p) for p in parts if p is not longest)
            and len(longest.split()) >= 3
        ):
            # Keep colon-joined headline parts ("Brexit: what next") together.
            if ":" in title and not re.search(r"\s[|\-–—·•»]\s", title):
                return title
            return longest
        return title
    return " - ".join(kept) if kept else title


def _continues(part: str) -> bool:
    """A segment of a few words opening in lower case continues the headline ("- an async task
    framework"): site names and sections are capitalised, or one word ("udn")."""
    return part[:1].islower() and len(part.split()) >= 3


def _shown_part(title: str, tree: HtmlElement) -> tuple[str, bool]:
    """Of "Site -- Headline" or "Site: Headline", the part the page shows as text, when it does not
    show the whole; and whether that part is a block of its own on the page (the headline as shown)."""
    body = tree.find("body")
    shown = _norm(body.text_content()) if body is not None else ""
    if title in shown:
        return title, False
    # The longest run of segments the page shows ("Site - Headline: with a colon" shows
    # "Headline: with a colon"), not only the longest single segment.
    pieces = _ANY_SEPARATOR.split(title)
    runs = [
        "".join(pieces[i:j + 1])
        for i in range(0, len(pieces), 2)
        for j in range(i, len(pieces), 2)
    ]
    runs = [r for r in runs if len(r.split()) >= 3 and r in shown]
    if not runs:
        return title, False
    # A page shows its headline once, its name again and again (masthead, footer, copyright line). When
    # nothing is shown once (a headline cut from the lede's opening words is shown twice), the headline
    # is the run that is a block of its own (its <b>, <font> or heading), not part of longer lines.
    once = [r for r in runs if shown.count(r) == 1]
    if once:
        best = max(once, key=len)
        return best, best in _blocks_among(body, [best])
    blocks = _blocks_among(body, runs)
    best = max([r for r in runs if r in blocks] or runs, key=len)
    return best, best in blocks


def _blocks_among(body: HtmlElement | None, runs: list[str]) -> set[str]:
    """Those of `runs` that are the whole text of an element of `body`."""
    if body is None:
        return set()
    wanted = set(runs)
    longest = max(len(r) for r in runs)
    found: set[str] = set()
    for el in body.iter():
        if isinstance(el.tag, str):
            text = _norm(el.text_content())
            if len(text) <= longest and text in wanted:
                found.add(text)
    return found


def _looks_like_domain(text: str) -> bool:
    return bool(re.fullmatch(r"(?:www\.)?[\w\-]+(?:\.[\w\-]+)*\.[a-z]{2,}", text.strip().lower()))


def _language(value: str | None) -> str | None:
    if not value:
        return None
    match = _LANG.match(value.strip().split(",")[0].strip())
    if not match or len(match.group(1)) != 2:
        return None
    return match.group(1).lower()


def _absolute(href: str | None, base: str | None) -> str | None:
    if not href:
        return None
    href = href.strip()
    resolved = urljoin(base, href) if base else href
    return resolved if urlsplit(resolved).scheme in ("http", "https") else None


def extract_metadata(
    tree: HtmlElement, url: str | None, latest: date | None = None, html: str | None = None
) -> Metadata:
    """Metadata from markup; dates later than `latest` (the day after the fetch) are not believed.
    `html` (the page's text) lets some searches be skipped quickly."""
    meta = read_meta(tree)
    md = Metadata(meta=meta)
    headline = ld_published = ld_modified = ld_lang = ld_url = None
    ld_authors: list[str] = []
    objects = list(json_ld_objects(tree))
    by_id = {obj["@id"]: obj for obj in objects if isinstance(obj.get("@id"), str) and "name" in obj}
    for obj in objects:
        types = _types(obj)
        if not types & _ARTICLE_TYPES:
            continue
        strong = bool(types - {"webpage", "creativework", "medicalwebpage"})
        md.is_article_typed = md.is_article_typed or strong
        if not headline or strong and not ld_authors:
            headline = obj.get("headline") if isinstance(obj.get("headline"), str) else headline or obj.get("name")
        ld_published = (
            ld_published or normalise(obj.get("datePublished"), latest) or normalise(obj.get("dateCreated"), latest)
        )
        ld_modified = ld_modified or normalise(obj.get("dateModified"), latest)
        lang = obj.get("inLanguage")
        ld_lang = ld_lang or (lang if isinstance(lang, str) else None)
        ld_url = ld_url or (obj.get("url") if isinstance(obj.get("url"), str) else None)
        for key in ("author", "creator"):
            for name, is_person in _names(obj.get(key), by_id):
                agency = agency_name(name, strict=False)
                if agency:
                    md.agency = md.agency or agency
                elif is_person and strong:
                    names, agency = parse_byline(name)
                    ld_authors.extend(names)
                    md.agency = md.agency or agency
        for name, _ in _names(obj.get("sourceOrganization")):
            md.agency = md.agency or agency_name(name, strict=False)
        publisher = obj.get("publisher")
        if isinstance(publisher, dict) and isinstance(publisher.get("name"), str):
            md.site_name = md.site_name or publisher["name"]
    if meta.get("og:type", "").lower() == "article":
        md.is_article_typed = True

    title_el = next(tree.iter("title"), None)
    title_text = _norm(title_el.text_content()) if title_el is not None else ""
    h1 = _headline_h1(tree, title_text)
    site_names = [meta.get("og:site_name", ""), meta.get("application-name", ""), md.site_name or ""]
    md.site_name = md.site_name or meta.get("og:site_name")
    raw_title = headline if isinstance(headline, str) and headline.strip() else None
    if raw_title is None:
        raw_title = meta.get("og:title") or meta.get("twitter:title") or meta.get("dc.title")
    if raw_title is None and h1 and not _title_beats_h1(tree, title_text, h1):
        raw_title = h1
    from_title_element = raw_title is None
    shown_headline = None
    if raw_title is None:
        raw_title = title_text or None
    if raw_title and not h1 and (
        _DOUBLE_HYPHEN.search(raw_title) or from_title_element and _TITLE_SEPARATORS.search(raw_title)
    ):
        raw_title, as_shown = _shown_part(_norm(raw_title), tree)
        # the headline as the page shows it: nothing of it is the site's label
        shown_headline = raw_title if as_shown else None
    md.title = clean_title(raw_title, site_names, h1 or shown_headline) or None if raw_title else None

    canonical = None
    for link in tree.iter("link"):
        if "canonical" in (link.get("rel") or "").lower().split():
            canonical = _absolute(link.get("href"), url)
            if canonical:
                break
    md.canonical_url = canonical or _absolute(meta.get("og:url"), url) or _absolute(ld_url, url)
    # A byline naming the site ("Listin Diario", "Preußische Allgemeine Zeitung") names no writer, unless
    # the site is the writer's own (janedoe.com, named "Jane Doe").
    host = re.sub(r"\W", "", urlsplit(url or md.canonical_url or "").netloc.casefold())
    sites = {key for key in map(_name_key, site_names) if key and not _own_site(key, host)}
    authors = _not_site(ld_authors, sites)
    for key in _AUTHOR_META:
        value = meta.get(key)
        if value and not authors and not value.startswith("http"):
            md.agency = md.agency or agency_name(value, strict=False)
            found, agency = parse_byline(value)
            authors = _not_site(found, sites)
            md.agency = md.agency or agency
    if not authors:
        found, agency = markup_byline(tree)
        authors = _not_site(found, sites)
        md.agency = md.agency or agency
    if not authors:
        found, agency = text_byline(tree, html)
        authors = _not_site(found, sites)
        md.agency = md.agency or agency
    md.authors = _dedupe(authors)

    md.published_at = (
        ld_published or _first_date(meta, _PUBLISHED_META, latest) or _time_element(tree, "datepublished", latest)
    )
    md.modified_at = (
        ld_modified or _first_date(meta, _MODIFIED_META, latest) or _time_element(tree, "datemodified", latest)
    )

    html_lang = tree.get("lang") or tree.get("xml:lang")
    md.language = (
        _language(html_lang) or _language(ld_lang) or _language(meta.get("og:locale"))
        or _language(meta.get("content-language")) or _language(meta.get("language")) or _language(meta.get("dc.language"))
    )

    return md


def _first_date(meta: dict[str, str], keys: tuple[str, ...], latest: date | None) -> str | None:
    for key in keys:
        value = normalise(meta.get(key), latest)
        if value:
            return value
    return None


def _time_element(tree: HtmlElement, itemprop: str, latest: date | None) -> str | None:
    """A ``<time itemprop=...>`` (a bare ``<time>`` is weak evidence, weighed later with other clues)."""
    for el in tree.iter("time"):
        if (el.get("itemprop") or "").lower() == itemprop:
            value = normalise(el.get("datetime") or el.text_content(), latest)
            if value:
                return value
    return None
