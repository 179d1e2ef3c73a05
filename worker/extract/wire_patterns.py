"""Wire-agency recognition: datelines, credit lines and organisation names.

A syndicated story says where it comes from in a handful of fixed ways:

- a dateline opening the first paragraph: ``KABUL, Afghanistan (AP) —``,
  ``LONDON (Reuters) -``, ``PARIS, July 6 (Reuters) -``, ``BERLIN (dpa) -``;
- a credit line near the end: ``Associated Press writers ... contributed to
  this report.``, ``(Reporting by ...; Editing by ...)``;
- structured data naming the agency as ``author`` or ``sourceOrganization``.

The dateline prefix stays in the body (the body is the story as published);
these functions only read it.
"""

from __future__ import annotations

import re

# Canonical short name -> spellings seen in bylines, credits and JSON-LD.
AGENCIES: dict[str, tuple[str, ...]] = {
    "AP": ("AP", "Associated Press", "The Associated Press"),
    "Reuters": ("Reuters", "Thomson Reuters", "Reuters Staff"),
    "AFP": ("AFP", "Agence France-Presse", "Agence France Presse", "AFP News"),
    "UPI": ("UPI", "United Press International"),
    "dpa": ("dpa", "DPA", "Deutsche Presse-Agentur"),
    "PA": ("PA", "PA Media", "Press Association", "PA Wire"),
    "ANSA": ("ANSA",),
    "EFE": ("EFE", "Agencia EFE"),
    "Kyodo": ("Kyodo", "Kyodo News"),
    "Xinhua": ("Xinhua", "Xinhua News Agency"),
    "Yonhap": ("Yonhap", "Yonhap News Agency"),
    "AAP": ("AAP", "Australian Associated Press"),
    "CP": ("CP", "The Canadian Press", "Canadian Press"),
    "PTI": ("PTI", "Press Trust of India"),
    "IANS": ("IANS",),
    "ANI": ("ANI",),
    "TASS": ("TASS", "ITAR-TASS"),
    "Anadolu": ("Anadolu Agency", "Anadolu", "AA"),
    "Bloomberg": ("Bloomberg", "Bloomberg News"),
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
# the parentheses of a dateline, never as a free-standing name.
_DATELINE_ONLY = {"aa", "tt", "pa", "cp", "ap", "ani", "stt", "ntb", "anp", "apa"}

_AGENCY_ALT = "|".join(
    sorted((re.escape(s) for spellings in AGENCIES.values() for s in spellings), key=len, reverse=True)
)
_DASH = r"(?:—|–|-|--|―|‒|:)"
# Place: an upper-case city ("KABUL", "NEW YORK", "SÃO PAULO", "ST. LOUIS")
# optionally followed by a mixed-case region ("Afghanistan", "N.Y.", "Calif.")
# and, Reuters style, the date ("July 6"). The agency in parentheses is optional
# (a staff story has a dateline too).
_PLACE = r"(?P<place>[A-ZÀ-ÖØ-Þ][\wÀ-ÿ'’.\-]*(?:\s+[A-ZÀ-ÖØ-Þ][\wÀ-ÿ'’.\-]*){0,3}(?:,\s*[A-ZÀ-ÖØ-Þ][\w.'’\-]*(?:\s+[A-ZÀ-ÖØ-Þ][\w.'’\-]*){0,2})?)"
_DATE = r"(?:,\s*(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Sept|Oct|Nov|Dec)[a-z]*\.?\s+\d{1,2}(?:,\s*\d{4})?)?"
DATELINE = re.compile(
    rf"^\s*{_PLACE}\s*{_DATE}\s*(?:\((?P<agency>{_AGENCY_ALT})\)\s*)?{_DASH}\s+\S",
)
# "(AP) —" / "(Reuters) -" opening a paragraph without a place.
_BARE_AGENCY = re.compile(rf"^\s*\((?P<agency>{_AGENCY_ALT})\)\s*{_DASH}")

_CREDITS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"\bAssociated Press (?:writers?|reporters?|correspondents?|journalists?)\b.{0,300}?\bcontributed\b", re.I | re.S), "AP"),
    (re.compile(r"\bcontributed to this report\b.{0,40}\bAssociated Press\b|^\s*[—–-]*\s*The Associated Press\s*$|Copyright \d{4} The Associated Press", re.I | re.M), "AP"),
    (re.compile(r"\((?:Reporting|Additional reporting|Writing) by [^)]{2,300}(?:Editing|Edited) by [^)]{2,200}\)", re.S), "Reuters"),
    (re.compile(r"\bThomson Reuters Trust Principles\b"), "Reuters"),
    (re.compile(r"^\s*(?:—|–|-)?\s*(?:with\s+)?AFP\s*$|©\s*(?:\d{4}\s+)?AFP\b|\bAgence France-Presse\s*$", re.M), "AFP"),
    (re.compile(r"^\s*(?:dpa|\(dpa\))\s*$|\bdpa-infocom\b", re.M), "dpa"),
)

_NOT_A_PLACE = {"UPDATE", "UPDATED", "BREAKING", "EXCLUSIVE", "WATCH", "VIDEO", "PHOTOS", "ANALYSIS", "OPINION", "LIVE", "FILE"}


def agency_name(text: str | None, *, strict: bool = True) -> str | None:
    """The canonical agency for a name as written ("Associated Press" -> "AP")."""
    if not text:
        return None
    key = re.sub(r"\s+", " ", text).strip(" .,;:-—–()").casefold()
    key = re.sub(r"^(?:by|from|source:|via)\s+", "", key)
    name = _BY_SPELLING.get(key)
    if name and strict and key in _DATELINE_ONLY and text.strip() != text.strip().upper():
        return None
    return name


def dateline(paragraph: str) -> tuple[str | None, str | None]:
    """``(dateline, agency)`` read from the opening of the first paragraph."""
    head = paragraph[:200]
    match = DATELINE.match(head)
    if match:
        place = match.group("place").strip().rstrip(",")
        city = place.split(",")[0]
        agency = match.group("agency")
        # An all-caps lead word ("WATCH —") is not a place; a place without an
        # agency needs the upper-case city that marks a real dateline.
        if city.strip(".") in _NOT_A_PLACE or not agency and (city.upper() != city or len(city) < 3):
            return None, None
        return place, _BY_SPELLING.get(agency.casefold()) if agency else None
    bare = _BARE_AGENCY.match(head)
    if bare:
        return None, _BY_SPELLING.get(bare.group("agency").casefold())
    return None, None


def credit_agency(paragraphs: list[str]) -> str | None:
    """The agency named by a credit line in the last paragraphs of a story."""
    tail = "\n".join(paragraphs[-6:])
    for pattern, name in _CREDITS:
        if pattern.search(tail):
            return name
    return None
