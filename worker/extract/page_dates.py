"""Publication and update dates for pages whose markup does not state them.

Markup written for machines (JSON-LD ``datePublished``, ``article:published_time``,
``<time itemprop=datePublished>``) is read in metadata.py and wins. Without it:

1. a labelled line in the page (``Posted: 12/04/2026 09:10 PM``,
   ``Published 9:10 p.m. ET Dec. 4, 2026 | Updated ...``) gives the date with
   its time, and an ``Updated`` label gives the modification date;
2. otherwise htmldate (the maintained library for this: URL patterns, header
   and JSON clues, then an extensive text search preferring the original date
   over later ones) gives the day, and a bare ``<time datetime>`` in the story
   gives its time when it falls on that day.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import date, datetime, timedelta, timezone

from htmldate import find_date
from lxml.html import HtmlElement

from .dates import EARLIEST, parse_date, plausible, to_iso

# A timestamp written with a UTC offset ("2023-11-08T18:09:55-07:00"), in markup or scripts.
# (Searched from its "T": a pattern opening with a literal is scanned for far faster than one opening
# with digits, 0.1 ms instead of 4 ms on a 500 kB page.)
_OFFSET_STAMP = re.compile(r"T(\d\d:\d\d(?::\d\d)?)(?:\.\d+)?\s?([+-]\d\d:?\d\d)\b")
# A key of the page's data naming the publication day, right before the value (``"DateCreation":``).
_DAY_KEY = re.compile(
    r"(?i:date_?(?:creat(?:ion|ed)|publi(?:shed|cation))|(?:publish(?:ed)?|publication|creat(?:ion|ed)|pub)_?date)"
    r"[\"']?\s*[:=]\s*$"
)
_STAMP_DAY = re.compile(r"\d{4}-\d\d-\d\d$")
_URL_DAY = re.compile(r"(?<!\d)(20\d\d|19\d\d)(?:([/_-])(\d\d?)\2(\d\d?)|(\d\d)(\d\d))(?!\d)")
_SCAN_CHARS = 600_000
_BY_WORD = re.compile(r"\b[Bb][Yy]\b")
# Words a line that only dates the story may hold besides numbers.
_NOT_DATE_WORD = re.compile(r"[^\W\d_]+")
_DATE_WORD = re.compile(
    r"(?i:jan|feb|mar|apr|may|jun|jul|aug|sep|sept|oct|nov|dec|january|february|march|april|june|july|august|"
    r"september|october|november|december|mon|tue|tues|wed|thu|thur|thurs|fri|sat|sun|monday|tuesday|wednesday|"
    r"thursday|friday|saturday|sunday|am|pm|a|p|m|at|on|st|nd|rd|th|et|ct|mt|pt|[a-z]{0,2}[sd]t|utc|gmt|cet|cest|"
    r"bst|ist|jst|kst)"
)
_YEAR = re.compile(r"(?<!\d)(?:19|20)\d\d(?!\d)")
# htmldate's text search runs over the whole page: 2 s for 7.5 MB of text. A
# story's date sits in its first part (the dev sets' pages are under 1.5 MB).
_LIBRARY_CHARS = 500_000
# Offsets of populated zones, in hours (Hawaii to Tonga): a larger shift means
# the URL's date is not the local day of this instant.
_WEST_MOST, _EAST_MOST = -10, 13

# The label opens the line or follows a colon-less byline ("By Jane Doe Posted: ...").
_LABEL = re.compile(
    r"(?:^|[\s|•·—–-])(?P<label>(?:first |originally )?(?:posted|published|publication date|date posted|"
    r"(?:last )?updated|(?:last )?modified|veröffentlicht|aktualisiert|publié|mis à jour|publicado|actualizado|"
    r"pubblicato|aggiornato|gepubliceerd|bijgewerkt))\b(?P<colon>\s*(?:on|am|le|el|il|op)?\s*:?)",
    re.I,
)
_UPDATE_LABEL = re.compile(r"updated|modified|aktualisiert|mis à jour|actualizado|aggiornato|bijgewerkt", re.I)
# Stems rather than words (capitals only for English), searched in each text of the body.
_LABEL_STEM = re.compile(
    "osted|OSTED|ubli|UBLI|pdated|PDATED|odified|ffentl|ktuali|ctuali|ubbli|ggiorn|is à jour|ijgewerkt"
)
_MAX_LINE = 200
_SKIP_PARENTS = {"script", "style", "noscript", "template", "textarea", "option", "a"}
_NOT_THE_STORY = {"aside", "nav", "footer", "li", "blockquote", "figure", "form"}
# English regions that write the day first (12/04 is 12 April there).
_DAY_FIRST_ENGLISH = re.compile(r"^en[-_](?:gb|au|nz|ie|in|za|sg|my|pk|ng|ke)", re.I)


def month_first(lang: str | None) -> bool:
    """Whether ``12/04/2026`` means December 4 on this page (US usage, and pages that do not say)."""
    if not lang:
        return True
    lang = lang.strip()
    return lang[:2].lower() == "en" and not _DAY_FIRST_ENGLISH.match(lang)


def labelled_dates(tree: HtmlElement, latest: date | None, lang: str | None) -> tuple[datetime | None, datetime | None]:
    """``(published, updated)`` from the first short lines of the page carrying such a label."""
    published = updated = None
    us = month_first(lang)
    seen: list[HtmlElement] = []
    for text, owner in _texts_with_label(tree):
        block = _block(owner)
        line = " ".join(" ".join(block.itertext()).split()) if block is not None else ""
        if not line or len(line) > _MAX_LINE:
            # a line between <br>s of a long block: the text itself
            line = " ".join(text.split())
        elif block in seen:
            continue
        else:
            seen.append(block)
        for label, moment in _labelled(line, us):
            if moment is None or not plausible(moment, latest):
                continue
            if _UPDATE_LABEL.search(label):
                updated = updated or moment
            else:
                published = published or moment
        if published and updated:
            break
    return published, updated


def _texts_with_label(tree: HtmlElement) -> Iterator[tuple[str, HtmlElement]]:
    """Short texts of the body holding a label stem, with the element they sit in.

    (A walk over the elements with one regex costs half of an XPath with a contains() per stem.)
    """
    body = tree.find("body")
    for el in (body if body is not None else tree).iter():
        if not isinstance(el.tag, str):
            continue
        for text, owner in ((el.text, el), (el.tail, el.getparent())):
            if text and len(text) <= _MAX_LINE and owner is not None and owner.tag not in _SKIP_PARENTS and (
                _LABEL_STEM.search(text)
            ):
                yield text, owner


def _block(el: HtmlElement) -> HtmlElement | None:
    """The smallest element around a label or a time that holds its date too (they often sit in siblings)."""
    for _ in range(3):
        text = " ".join(el.itertext())
        if len(text) > 60 or _YEAR.search(text) or el.getparent() is None:
            return el
        el = el.getparent()
    return el


def _labelled(line: str, us: bool) -> list[tuple[str, datetime | None]]:
    """Each label of `line` with the date that follows it (before the next label)."""
    marks = list(_LABEL.finditer(line))
    out = []
    for index, mark in enumerate(marks):
        # A label inside prose ("was posted on Twitter") is not a date line: it
        # must open the line or carry a colon or a date right after it.
        end = marks[index + 1].start() if index + 1 < len(marks) else len(line)
        value = line[mark.end():end].strip(" |•·,")
        if mark.start() > 0 and ":" not in mark.group("colon") and not re.match(r"[\d(]|[A-Z][a-z]{2}", value):
            continue
        out.append((mark.group("label"), parse_date(value[:80], month_first=us)))
    return out


def is_date_line(line: str) -> bool:
    """A short line that only dates the story ("Posted: 12/04/2026 09:10 PM", "Updated Dec. 4, 2026")."""
    if len(line) > 120:
        return False
    words = line.split()
    marks = list(_LABEL.finditer(line))
    if marks and marks[0].start() == 0:
        return any(moment is not None for _, moment in _labelled(line, True))
    # "5:45 AM PST 11/19/2019 by Patrick Shanley": a date with a byline is such a line too
    dated, *by = _BY_WORD.split(line, 1)
    byline = by[0] if by else ""
    rest = [w for w in _NOT_DATE_WORD.findall(dated) if not _DATE_WORD.fullmatch(w)]
    return (
        len(words) <= 8 and len(rest) <= 1 and len(byline.split()) <= 5 and any(c.isdigit() for c in line)
        and parse_date(line) is not None
    )


def story_time(tree: HtmlElement, latest: date | None) -> datetime | None:
    """The first ``<time datetime>`` outside asides, lists, quotes and footers (weak: related items use it too)."""
    for el in tree.iter("time"):
        value = parse_date(el.get("datetime"))
        if value is None or not plausible(value, latest):
            continue
        if any(a.tag in _NOT_THE_STORY for a in el.iterancestors()):
            continue
        return value
    return None


def library_day(page: str, url: str | None, latest: date | None) -> date | None:
    """htmldate's original-publication day, or None."""
    try:
        found = find_date(
            page, url=url, original_date=True, extensive_search=True, min_date=datetime.combine(EARLIEST, datetime.min.time()),
            max_date=datetime.combine(latest, datetime.min.time()) if latest else None,
        )
    except (ValueError, TypeError, RecursionError):
        return None
    if not found:
        return None
    try:
        return date.fromisoformat(found[:10])
    except ValueError:
        return None


def fallback_dates(
    tree: HtmlElement, text: str, url: str | None, latest: date | None, lang: str | None
) -> tuple[str | None, str | None]:
    """``(published_at, modified_at)`` for a page without machine-readable dates."""
    published, updated = labelled_dates(tree, latest, lang)
    if published is None and updated is not None:
        # a page that only shows "Updated: ..." was first published then or before; the
        # library's reading of the same page (12/04 as 12 April) is no better
        published = updated
    if published is None:
        # the page's text, not our tree: htmldate reads comments too (RDF trackback blocks carry dc:date)
        day = library_day(text[:_LIBRARY_CHARS], url, latest)
        timed = story_time(tree, latest)
        if timed is not None and (day is None or timed.date() == day):
            published = timed
        elif day is not None:
            published = datetime(day.year, day.month, day.day)
    if published is not None and updated is not None and updated.replace(tzinfo=None) < published.replace(tzinfo=None):
        updated = None
    return (to_iso(published) if published else None, to_iso(updated) if updated else None)


def localise(stamp: str | None, text: str, url: str | None, tree: HtmlElement | None = None) -> str | None:
    """A UTC timestamp expressed in the page's own offset, when the page tells it.

    Sites often put UTC in ``datePublished`` and the local time elsewhere:
    the same instant written with an offset in another tag or script
    (``2023-11-09T01:09:55Z`` and ``2023-11-08T18:09:55-07:00``) gives the
    offset exactly, and so does the local time shown to readers
    (``Nov. 8, 2023 6:09 PM``). Failing that, a URL dated one day off the UTC day
    (``/2023/11/08/``) is the local day: the instant is shifted by the
    smallest whole number of hours that reaches it (the offset is then a
    lower bound, the instant exact and the day the page's).
    """
    if not stamp or not stamp.endswith("Z") or "T00:00:00Z" in stamp:
        return stamp
    moment = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    twin = _offset_twin(moment, text) or (_shown_twin(moment, tree) if tree is not None else None)
    if twin is not None:
        return to_iso(twin)
    day = url_day(url) or _keyed_day(moment.date(), text)
    if day is None:
        return stamp
    gap = (day - moment.date()).days
    if gap == 1:  # east of Greenwich
        hours = 24 - moment.hour
    elif gap == -1:
        hours = -(moment.hour + 1)
    else:
        return stamp
    if not _WEST_MOST <= hours <= _EAST_MOST:
        return stamp
    return to_iso(moment.astimezone(timezone(timedelta(hours=hours))))


def _keyed_day(utc_day: date, text: str) -> date | None:
    """The day before or after `utc_day` when the page's data states it alone as the publication day
    (``"pubDate": "2023-11-08"``). (Found by the literal value: a regex for any such key over the page
    cost ~6 ms.)"""
    for day in (utc_day - timedelta(days=1), utc_day + timedelta(days=1)):
        for quote in "\"'":
            value = f"{quote}{day.isoformat()}{quote}"
            at = text.find(value, 0, _SCAN_CHARS)
            while at >= 0:
                if _DAY_KEY.search(text, max(0, at - 40), at):
                    return day
                at = text.find(value, at + 1, _SCAN_CHARS)
    return None


def _offset_twin(moment: datetime, text: str) -> datetime | None:
    for match in _OFFSET_STAMP.finditer(text, 0, _SCAN_CHARS):
        if match.group(2) in ("+00:00", "+0000", "-00:00", "-0000"):
            continue
        day = text[max(0, match.start() - 10):match.start()]
        if not _STAMP_DAY.match(day):
            continue
        found = parse_date(f"{day}T{match.group(1)}{match.group(2)}")
        if found is None or found.tzinfo is None:
            continue
        if abs((found - moment).total_seconds()) < 60:
            return found
    return None


def _shown_twin(moment: datetime, tree: HtmlElement) -> datetime | None:
    """The instant as the page shows it in local time: same minute, a whole quarter-hour offset away."""
    for node in tree.xpath(f"//body//text()[contains(., ':{moment.minute:02d}')]"):
        if len(node) > _MAX_LINE:
            continue
        parent = node.getparent()
        if parent is None or parent.tag in _SKIP_PARENTS:
            continue
        block = _block(parent)
        line = " ".join(" ".join(block.itertext()).split())[:_MAX_LINE] if block is not None else str(node)
        shown = parse_date(line)
        if shown is None or shown.minute != moment.minute:
            continue
        if shown.tzinfo is not None:
            if abs((shown - moment).total_seconds()) < 60 and shown.utcoffset():
                return shown
            continue
        offset = shown - moment.replace(tzinfo=None, second=0)
        minutes = round(offset.total_seconds() / 60)
        if minutes and minutes % 15 == 0 and _WEST_MOST * 60 <= minutes <= 14 * 60 and shown.second in (0, moment.second):
            return moment.astimezone(timezone(timedelta(minutes=minutes)))
    return None


def url_day(url: str | None) -> date | None:
    """The date a URL's path carries (``/2023/11/08/``, ``/20200413/``, ``2020-04-13``), if any."""
    if not url:
        return None
    path = url.split("?", 1)[0].split("//", 1)[-1]
    for match in _URL_DAY.finditer(path):
        year, _sep, month, day, month2, day2 = match.groups()
        try:
            return date(int(year), int(month or month2), int(day or day2))
        except ValueError:
            continue
    return None
