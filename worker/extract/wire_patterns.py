"""Wire-agency recognition: datelines, credit lines and organisation names.

A syndicated story says where it comes from in a handful of fixed ways:

- a dateline opening the first paragraph: ``KABUL, Afghanistan (AP) —``,
  ``LONDON (Reuters) -``, ``WASHINGTON, Dec 4 (Reuters) -``, ``BERLIN (dpa) -``,
  ``BEIJING, Dec. 4 (Xinhua) --``, ``Madrid, 4 dic (EFE).-``, or the agency
  first: ``(ANSA) - ROME, DEC 4 -``;
- a byline naming it: ``BY JANE DOE, THE ASSOCIATED PRESS``, ``Jane Doe | AP``;
- a credit line near the end: ``Associated Press writers ... contributed to
  this report.``, ``(Reporting by ...; Editing by ...)``;
- structured data naming the agency as ``author`` or ``sourceOrganization``.

Text is matched after `matchable` (no zero-width characters, mojibake
repaired); every dash variant (``‐ ‑ ‒ – — ― − -- -``) and non-breaking
spaces are accepted. The dateline prefix stays in the body (the body is the
story as published); these functions only read it.
"""

from __future__ import annotations

import re
from functools import lru_cache

from .text import matchable

# Canonical short name -> spellings seen in bylines, credits and JSON-LD.
AGENCIES: dict[str, tuple[str, ...]] = {
    "AP": ("AP", "Associated Press", "The Associated Press", "AP News", "Associated Press (AP)"),
    "Reuters": ("Reuters", "Thomson Reuters", "Reuters Staff", "Reuters News", "Reuters.com"),
    "AFP": ("AFP", "Agence France-Presse", "Agence France Presse", "AFP News", "Agence France-Presse (AFP)"),
    "UPI": ("UPI", "United Press International"),
    "dpa": ("dpa", "DPA", "Deutsche Presse-Agentur", "Deutsche Presse Agentur", "dpa international"),
    "PA": ("PA", "PA Media", "Press Association", "PA Wire"),
    "ANSA": ("ANSA", "Agenzia ANSA", "ANSA.it"),
    "EFE": ("EFE", "Agencia EFE", "Agencia Efe", "EFE News"),
    "Kyodo": ("Kyodo", "Kyodo News", "Kyodo News Agency"),
    "Xinhua": ("Xinhua", "Xinhua News Agency", "Xinhua News", "Xinhuanet"),
    "Yonhap": ("Yonhap", "Yonhap News Agency", "Yonhap News"),
    "AAP": ("AAP", "Australian Associated Press"),
    "CP": ("CP", "The Canadian Press", "Canadian Press"),
    "PTI": ("PTI", "Press Trust of India", "Press Trust Of India (PTI)"),
    "IANS": ("IANS", "Indo-Asian News Service"),
    "ANI": ("ANI", "Asian News International"),
    "TASS": ("TASS", "ITAR-TASS"),
    "Anadolu": ("Anadolu Agency", "Anadolu", "AA"),
    "Bloomberg": ("Bloomberg", "Bloomberg News", "Bloomberg L.P."),
    "APA": ("APA",),
    "KNA": ("KNA",),
    "epd": ("epd",),
    "Belga": ("Belga",),
    "ANP": ("ANP",),
    "NTB": ("NTB",),
    "TT": ("TT",),
    "Ritzau": ("Ritzau",),
    "STT": ("STT",),
    "CTK": ("ČTK", "CTK"),
    "PAP": ("PAP",),
    "Europa Press": ("Europa Press",),
    "Lusa": ("Lusa",),
}

_BY_SPELLING = {spelling.casefold(): name for name, spellings in AGENCIES.items() for spelling in spellings}
# Short codes that are also ordinary words or initials: only trusted inside
# the parentheses of a dateline or in capitals, never as a lower-case word.
_DATELINE_ONLY = {"aa", "tt", "pa", "cp", "ap", "ani", "stt", "ntb", "anp", "apa"}

_AGENCY_ALT = "|".join(
    sorted((re.escape(s) for spellings in AGENCIES.values() for s in spellings), key=len, reverse=True)
)
# Every dash a page uses between dateline and story, "--" included; EFE writes ".-".
DASH = "[\u2010\u2011\u2012\u2013\u2014\u2015\u2212-]"
# A long dash mis-decoded ("â€”" for "—") that no repair could read back, because the page later
# straightened its curly quotes too ("â€\"") or dropped a byte ("â€"): still the dash after a dateline.
_BROKEN_DASH = "\u00e2\u20ac[\"\u201d]?"
_DASH = rf"(?:\.?(?:{DASH}{{1,2}})|:|{_BROKEN_DASH})"
_UP = "A-ZÀ-ÖØ-ÞĀ-Ž"
# Place: an upper-case city ("KABUL", "NEW YORK", "SÃO PAULO", "ST. LOUIS")
# optionally followed by a mixed-case region ("Afghanistan", "N.Y.", "Calif.")
# and, Reuters style, the date ("July 6", "Dec. 4", "4 dic"). The agency in
# parentheses is optional (a staff story has a dateline too).
_WORD = rf"[{_UP}][\wÀ-ÿ'’.\-]*"
_PLACE = rf"(?P<place>{_WORD}(?:\s+{_WORD}){{0,3}}(?:,\s*{_WORD}(?:\s+{_WORD}){{0,2}})?)"
_MONTH = r"(?i:jan|feb|mar|apr|may|jun|jul|aug|sep|sept|oct|nov|dec|ene|dic|gen|mag|giu|lug|ago|set|ott|okt|dez|mär|mai|déc|janv|févr|avr|juil)[a-zé]*\.?"
_DATE = rf"(?:,\s*(?:{_MONTH}\s+\d{{1,2}}|\d{{1,2}}\.?\s+{_MONTH})(?:,?\s*\d{{4}})?)?"
# A hyphen needs a space after it ("COVID-19" is no dateline); a long dash does not.
_AFTER = rf"(?:{_DASH}\s+|\.?[\u2012-\u2015\u2212]\s*)\S"
# After "(agency)" the dash is optional: PTI writes "New Delhi, Dec 4 (PTI) The ...".
DATELINE = re.compile(
    rf"^\s*{_PLACE}\s*{_DATE}\s*(?:\((?P<agency>{_AGENCY_ALT})\)\s*(?:{_AFTER}|(?=[\"“‘'{_UP}]))|{_AFTER})"
)
# "(AP) —" / "(ANSA) - ROME, DEC 4 -" opening a paragraph: the agency first.
_BARE_AGENCY = re.compile(rf"^\s*\((?P<agency>{_AGENCY_ALT})\)\s*{_DASH}\s*(?:{_PLACE}\s*{_DATE}\s*{_DASH})?")

_CREDITS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"\bAssociated Press (?:writers?|reporters?|correspondents?|journalists?)\b.{0,300}?\bcontributed\b", re.I | re.S), "AP"),
    (re.compile(r"\bcontributed to this report\b.{0,40}\bAssociated Press\b|^\s*[—–-]*\s*The Associated Press\s*$|Copyright \d{4} The Associated Press", re.I | re.M), "AP"),
    (re.compile(r"\((?:Reporting|Additional reporting|Writing) by [^)]{2,300}(?:Editing|Edited) by [^)]{2,200}\)", re.S), "Reuters"),
    (re.compile(r"\bThomson Reuters Trust Principles\b"), "Reuters"),
    (re.compile(r"^\s*(?:—|–|-)?\s*(?:with\s+)?AFP\s*$|©\s*(?:\d{4}\s+)?AFP\b|\bAgence France-Presse\s*$", re.M), "AFP"),
    (re.compile(r"^\s*(?:dpa|\(dpa\))\s*$|\bdpa-infocom\b", re.M), "dpa"),
)

_NOT_A_PLACE = {
    "UPDATE", "UPDATED", "BREAKING", "EXCLUSIVE", "WATCH", "VIDEO", "PHOTOS", "ANALYSIS", "OPINION", "LIVE", "FILE",
    "EDITOR'S NOTE", "EDITORS NOTE", "CORRECTION", "NOTE", "WARNING", "SPOILER", "UPDATE 1", "BY",
}


# Openings in capitals that are salutations or labels, not cities ("DEAR ABBY:", "BY JANE DOE —").
_NOT_A_FIRST_WORD = {
    "DEAR", "BY", "PHOTO", "PHOTOS", "FILE", "VIDEO", "WATCH", "READ", "LISTEN", "UPDATED", "POSTED", "PUBLISHED",
}


@lru_cache(maxsize=4096)
def agency_name(text: str | None, *, strict: bool = True) -> str | None:
    """The canonical agency for a name as written ("Associated Press" -> "AP"). (Cached: bylines ask
    about the same few strings again and again.)"""
    if not text:
        return None
    key = re.sub(r"\s+", " ", matchable(text)).strip(" .,;:-—–()|").casefold()
    key = re.sub(r"^(?:by|from|source:|source|via|quelle:|fuente:|fonte:)\s+", "", key)
    name = _BY_SPELLING.get(key)
    if name and strict and key in _DATELINE_ONLY and text.strip() != text.strip().upper():
        return None
    return name


_ANY_AGENCY = re.compile(rf"(?<!\w)(?:{_AGENCY_ALT})(?!\w)")


def agency_in(text: str) -> bool:
    """Whether `text` names an agency anywhere (a quick test before reading a byline)."""
    return _ANY_AGENCY.search(matchable(text)) is not None


def dateline(paragraph: str) -> tuple[str | None, str | None]:
    """``(dateline, agency)`` read from the opening of a paragraph."""
    head = matchable(paragraph[:240])
    match = DATELINE.match(head)
    if match:
        place = match.group("place").strip().rstrip(",")
        city = place.split(",")[0]
        agency = match.group("agency")
        # An all-caps lead word ("WATCH —") is not a place; a place without an
        # agency needs the upper-case city that marks a real dateline.
        if city.strip(".") in _NOT_A_PLACE or city.split()[0] in _NOT_A_FIRST_WORD or not agency and (city.upper() != city or len(city) < 3):
            return None, None
        return place, _BY_SPELLING.get(agency.casefold()) if agency else None
    bare = _BARE_AGENCY.match(head)
    if bare:
        place = bare.group("place")
        if place and (place.split(",")[0].upper() != place.split(",")[0] or place.split(",")[0] in _NOT_A_PLACE):
            place = None
        return (place.strip().rstrip(",") if place else None), _BY_SPELLING.get(bare.group("agency").casefold())
    return None, None


def credit_agency(paragraphs: list[str]) -> str | None:
    """The agency named by a credit line in the last paragraphs of a story."""
    tail = "\n".join(paragraphs[-6:])
    for pattern, name in _CREDITS:
        if pattern.search(tail):
            return name
    return None
