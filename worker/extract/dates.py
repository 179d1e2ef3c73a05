"""Date strings found in pages -> ISO-8601 with the offset the page states.

``published_at`` and ``modified_at`` keep the page's own UTC offset
(``2026-12-04T21:10:00-05:00``): the instant stays exact and the calendar
day stays the page's (converting to UTC moves an evening story to the next
day). A date in UTC, or without a zone, ends in ``Z`` (never the local zone
of the machine running the worker); a date without a time is midnight.

Formats read: ISO-8601 and its common variants (``2017-11-03 03:01:00.000``,
``20210706T1000``, ``+0200``), RFC 2822 (``Tue, 06 Jul 2021 10:00:00 GMT``),
and the English forms shown on pages (``Dec. 4, 2026 9:10 PM EST``,
``4 December 2026``, ``12/04/2026 09:10 PM``, ``04.12.2026 21:10``).
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta, timezone, tzinfo
from email.utils import parsedate_to_datetime
from zoneinfo import ZoneInfo

_ISO_PREFIX = re.compile(
    r"(\d{4})-?(\d{2})-?(\d{2})(?:[T ](\d{1,2}):?(\d{2})(?::?(\d{2})(?:[.,]\d+)?)?\s*"
    r"(Z|z|UTC|GMT|[+-]\d{2}(?::?\d{2})?)?)?(?![\d:])"
)
_RFC2822 = re.compile(r"^(?:[A-Za-z]{3},?\s+)?\d{1,2}\s+[A-Za-z]{3}\s+\d{2,4}\s+\d\d:\d\d(?::\d\d)?\s*(?:[+-]\d{4}|[A-Z]{1,5})?\s*$")
# Nothing news-like is older than the web; a page claiming otherwise read a
# birth date or a copyright line.
EARLIEST = date(1995, 1, 1)

_MONTHS = {
    "jan": 1, "feb": 2, "mar": 3, "apr": 4, "may": 5, "jun": 6, "jul": 7, "aug": 8, "sep": 9, "oct": 10,
    "nov": 11, "dec": 12,
}
_MONTH = r"(?P<month>jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|sept?(?:ember)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)\.?"
_WEEKDAY = r"(?:(?:mon|tue|tues|wed|thu|thur|thurs|fri|sat|sun)(?:day|nesday|sday|urday)?\.?,?\s+)?"
_DATE_FORMS = (
    # Dec. 4, 2026 / December 4 2026 / Friday, Dec 4th, 2026
    re.compile(rf"\b{_WEEKDAY}{_MONTH}\s+(?P<day>\d{{1,2}})(?:st|nd|rd|th)?,?\s+(?P<year>\d{{4}})\b", re.I),
    # 4 December 2026 / 4th Dec. 2026
    re.compile(rf"\b{_WEEKDAY}(?P<day>\d{{1,2}})(?:st|nd|rd|th)?\.?\s+(?:of\s+)?{_MONTH},?\s+(?P<year>\d{{4}})\b", re.I),
    # 2026-12-04 / 2026/12/04 / 2026.12.04
    re.compile(r"\b(?P<year>\d{4})[-/.](?P<month>\d{1,2})[-/.](?P<day>\d{1,2})\b"),
    # 12/04/2026 (month first in US English, day first elsewhere) / 04.12.2026 (day first)
    re.compile(r"\b(?P<a>\d{1,2})(?P<sep>[/.-])(?P<b>\d{1,2})(?P=sep)(?P<year>\d{4})\b"),
)
_TIME = re.compile(
    r"(?<![\d:])(?P<hour>\d{1,2})(?:[:.h](?P<minute>\d{2})(?::(?P<second>\d{2}))?)?\s*"
    r"(?P<ampm>[ap]\.?\s?m\.?(?![a-z]))?"
    r"(?:\s*\(?(?P<zone>(?:UTC|GMT)\s?[+-]\s?\d{1,2}(?::?\d{2})?|[+-]\d{2}:?\d{2}|[A-Z]{2,5})\b\)?)?",
    re.I,
)
# Zone abbreviations as pages print them. A named summer/winter form is a
# fixed offset; a bare region ("ET") takes the offset in force on that day.
_FIXED_ZONES = {
    "UTC": 0, "GMT": 0, "Z": 0, "WET": 0, "BST": 60, "IST": 330, "CET": 60, "CEST": 120, "MEZ": 60, "MESZ": 120,
    "EET": 120, "EEST": 180, "MSK": 180, "EST": -300, "EDT": -240, "CST": -360, "CDT": -300, "MST": -420,
    "MDT": -360, "PST": -480, "PDT": -420, "AKST": -540, "AKDT": -480, "HST": -600, "JST": 540, "KST": 540,
    "HKT": 480, "SGT": 480, "AEST": 600, "AEDT": 660, "ACST": 570, "AWST": 480, "NZST": 720, "NZDT": 780,
    "WIB": 420, "PHT": 480, "PKT": 300,
}
_REGION_ZONES = {"ET": "America/New_York", "CT": "America/Chicago", "MT": "America/Denver", "PT": "America/Los_Angeles"}


def parse_date(value: object, *, month_first: bool = True) -> datetime | None:
    """A date as a page writes it; aware when the text names a zone, else naive. None when unreadable."""
    if not isinstance(value, str):
        return None
    text = value.strip()[:100]
    if not text:
        return None
    return _parse_iso(text) or _parse_rfc2822(text) or parse_human(text, month_first=month_first)


def to_iso(moment: datetime) -> str:
    """ISO-8601 keeping the stated offset; ``Z`` for UTC and for a date without zone."""
    offset = moment.utcoffset()
    if offset is None or offset == timedelta(0):
        return moment.replace(tzinfo=None, microsecond=0).isoformat() + "Z"
    return moment.replace(microsecond=0).isoformat()


def plausible(moment: datetime, latest: date | None) -> bool:
    """After the web began and no later than `latest` (the day after the fetch)."""
    return moment.date() >= EARLIEST and (latest is None or moment.date() <= latest)


def normalise(value: object, latest: date | None = None) -> str | None:
    """`value` as ISO-8601 with its offset, or None when unreadable or implausible."""
    parsed = parse_date(value)
    if parsed is None or not plausible(parsed, latest):
        return None
    return to_iso(parsed)


def _offset(minutes: int) -> tzinfo:
    return UTC if minutes == 0 else timezone(timedelta(minutes=minutes))


def _parse_iso(text: str) -> datetime | None:
    match = _ISO_PREFIX.match(text)
    if not match:
        return None
    year, month, day, hour, minute, second, zone = match.groups()
    try:
        naive = datetime(int(year), int(month), int(day), int(hour or 0), int(minute or 0), int(second or 0))
    except ValueError:
        return None
    if not zone:
        return naive
    if zone.upper() in ("Z", "UTC", "GMT"):
        return naive.replace(tzinfo=UTC)
    digits = zone[1:].replace(":", "")
    minutes = (int(digits[:2]) * 60 + int(digits[2:4] or 0)) * (1 if zone[0] == "+" else -1)
    if abs(minutes) > 14 * 60:
        return None
    return naive.replace(tzinfo=_offset(minutes))


def _parse_rfc2822(text: str) -> datetime | None:
    # Only the real form: the stdlib parser is lenient and reads "Nov 19, 2019 5:53 PM" as 05:53.
    if not _RFC2822.match(text):
        return None
    try:
        parsed = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if parsed is None:
        return None
    # "-0000" means "zone unknown" in RFC 2822, which is how naive values come back
    return parsed


def _zone(name: str | None, day: date) -> tzinfo | None:
    if not name:
        return None
    key = re.sub(r"\s", "", name).upper()
    if key in _FIXED_ZONES:
        return _offset(_FIXED_ZONES[key])
    if key in _REGION_ZONES:
        return ZoneInfo(_REGION_ZONES[key])
    match = re.fullmatch(r"(?:UTC|GMT)?([+-])(\d{1,2}):?(\d{2})?", key)
    if match:
        minutes = (int(match.group(2)) * 60 + int(match.group(3) or 0)) * (1 if match.group(1) == "+" else -1)
        if abs(minutes) <= 14 * 60:
            return _offset(minutes)
    return None


def parse_human(text: str, *, month_first: bool = True) -> datetime | None:
    """The first date written out in `text` (with the time and zone next to it, when there are)."""
    for form in _DATE_FORMS:
        match = form.search(text)
        if match:
            break
    else:
        return None
    found = match.groupdict()
    try:
        year = int(found["year"])
        if found.get("a"):
            a, b = int(found["a"]), int(found["b"])
            # day first with dots, when the first number cannot be a month, or outside US usage
            if found["sep"] == "." or a > 12 or not month_first and b <= 12:
                day_, month = a, b
            else:
                month, day_ = a, b
        else:
            month_text = found["month"]
            month = _MONTHS[month_text[:3].lower()] if month_text[:1].isalpha() else int(month_text)
            day_ = int(found["day"])
        day = date(year, month, day_)
    except (ValueError, KeyError):
        return None
    rest = text[match.end():match.end() + 40]
    before = text[max(0, match.start() - 30):match.start()]
    clock = _clock(rest.lstrip(" ,|-–—at@").lstrip()) or _clock_before(before)
    if clock is None:
        return datetime(day.year, day.month, day.day)
    hour, minute, second, zone = clock
    try:
        moment = datetime(day.year, day.month, day.day, hour, minute, second)
    except ValueError:
        return datetime(day.year, day.month, day.day)
    tz = _zone(zone, day)
    return moment.replace(tzinfo=tz) if tz else moment


def _clock(text: str) -> tuple[int, int, int, str | None] | None:
    match = _TIME.match(text)
    return _clock_parts(match) if match else None


def _clock_before(text: str) -> tuple[int, int, int, str | None] | None:
    """A time printed before the date ("9:10 p.m. ET Dec. 4, 2026")."""
    found = None
    for match in _TIME.finditer(text):
        found = match
    if found is None or text[found.end():].strip(" ,|-–—") not in ("", "on"):
        return None
    return _clock_parts(found)


def _clock_parts(match: re.Match[str]) -> tuple[int, int, int, str | None] | None:
    if match.group("minute") is None and not match.group("ampm"):
        return None  # a bare number is no time
    hour, minute = int(match.group("hour")), int(match.group("minute") or 0)
    ampm = (match.group("ampm") or "").replace(".", "").replace(" ", "").lower()
    if ampm:
        if not 1 <= hour <= 12:
            return None
        hour = hour % 12 + (12 if ampm == "pm" else 0)
    if hour > 23 or minute > 59:
        return None
    zone = match.group("zone")
    if zone and not _zone(zone, date(2000, 1, 1)):
        zone = None
    return hour, minute, int(match.group("second") or 0), zone
