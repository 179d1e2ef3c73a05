"""Bylines: the people who wrote a story (and the agency a byline names).

A byline is read the same way wherever it comes from (JSON-LD ``author``,
``<meta name=author>``, a ``.byline`` element, or a line of text such as
``BY FARID BELLWEATHER AND NIKHIL WHITCOMBE, THE ASSOCIATED PRESS``): the
``By`` prefix and any trailing date or label are cut, the rest is split on
commas, "and", "&", "|", and each part is kept when it is a person's name.
Never kept: an agency (it becomes the byline's agency instead), a desk or
"Staff", a job title, a date line, an e-mail address or a URL. Names written
in capitals are given their usual case (``Nikhil Whitcombe``, ``Sean O'Brien``,
``Ludwig van Beethoven``).
"""

from __future__ import annotations

import re

from lxml import etree
from lxml.html import HtmlElement

from .text import matchable
from .wire_patterns import DASH, agency_in, agency_name, dateline

_BY_PREFIX = re.compile(
    r"^\s*(?:(?:story|words|text|written|posted|reported|report|reporting|compiled|analysis|commentary)\s+by|"
    r"(?:propos\s+)?recueillis?\s+par|by|von|par|por|di|door|av|af|przez|от|autor(?:in|a|zy)?|auteur|author|autore|"
    r"texto|text|bron|piše|pise|napisał[a]?|yazan|текст|автор[ыа]?|редактор|skrevet\s+af|geschrieben\s+von)"
    r"(?!\w)\s*:?\s*",
    re.I,
)
# What follows the names on a byline line and is not a name: a date, a time, a label.
_TRAILER = re.compile(
    rf"\s*(?:[|,•·]|\s{DASH})?\s*(?:\b(?:updated|published|posted|last updated|modified|created|date|on|"
    r"publicad[oa]|actualizad[oa]|atualizad[oa]|publié|mis à jour|veröffentlicht|aktualisiert|pubblicato|"
    r"aggiornato|gepubliceerd|bijgewerkt|opublikowano|zaktualizowano|publicerad|uppdaterad|julkaistu)\b\s*:?|"
    r"\b(?:jan|feb|mar|apr|jun|jul|aug|sep|sept|oct|nov|dec)[a-z]*\.?\s+\d|\b(?:january|february|march|april|may|june|july|"
    r"august|september|october|november|december)\s+\d|\d{1,2}[/.]\d{1,2}[/.]\d{2,4}|\d{4}-\d\d-\d\d|\d{1,2}:\d\d|"
    r"\d+\s+(?:min(?:ute)?s?|hours?|days?)\s+ago|\bhttps?://|\bwww\.|\(?@\w|"
    r"\b(?:mon|tues|wednes|thurs|fri|satur|sun)day\b).*$",
    re.I,
)
# Conjunctions of one or two letters only in lower case: "Robert E Lee" is one name.
_SPLIT = re.compile(
    rf"\s*(?:,|;|\||&|\+|/|•|·|\s{DASH}{{1,2}}\s|\b(?i:and|und|with|avec|mit|con|och)\b|\b(?:et|y|e|en|og|i)\b)\s*"
)
# "José Volta e Pinto", "José Ortega y Gasset": a lone surname after "e"/"y"/"i" ends the name (a co-author has a
# first name too); joined with "_" so the split on conjunctions leaves it whole.
_JOINED_SURNAME = re.compile(r"(?<=[^\W\d_]{2}) (e|y|i) ([A-ZÀ-Þ][^\W\d_]+)(?=\s*(?:$|[,;|]))")
# Dashes spaced out of a name: "Por Diêgo Holanda, G1 RO — Porto Velho".
_DASHED = re.compile(rf"\s{DASH}{{1,2}}\s")
# "Finian Cunningham. Sputnik International": a full stop after a word (not an initial) ends the name.
_SENTENCE_END = re.compile(r"(?<=\w{3})\.\s+(?=[A-Z])")
_NOT_PERSON = re.compile(
    r"\b(?:staff|desk|team|editors?|editorial|newsroom|news|service|agency|wire|correspondents?|reporters?|writers?|"
    r"bureau|admin|administrator|webmaster|contributors?|contributing|media|online|digital|press|times|post|daily|journal|"
    r"magazine|herald|tribune|gazette|network|group|inc|ltd|llc|redaktion|rédaction|redacción|redazione|"
    r"columnist|photographer|photos?|video|senior|chief|associate|assistant|deputy|managing|executive|political|"
    r"business|sports|health|science|technology|culture|opinion|analyst|producer|presenter|anchor|host|"
    r"special|guest|author|authors|follow|about|more|view|profile|share|contact|email|subscribe|sign|print|"
    r"comments?|login|menu|search|home|read|update[ds]?|published|posted|sponsored|advertis\w*|partner|"
    r"university|institute|foundation|council|department|ministry|office|association|society|committee|"
    r"company|corporation|organi[sz]ation|project|projects|wikimedia|international|the|police|polizei|policía|"
    r"polizia|gendarmerie|government|regierung|ministerium|county|city|stadt|gemeinde|developed|designed|powered|"
    r"sport|zeitung|diario|jornal|giornale|noticias|notícias|nachrichten|today|agência|agencia|agenzia|agentur|"
    r"prefeitura|assessoria|coordenadoria|ब्यूरो|डेस्क|autoren|redakteure?|équipe|equipe|redação|redacao|redaccion|for|für|pour|"
    r"редакция|новости|служба|агентство|وكالة|أخبار|اخبار|الأخبار|جريدة|صحيفة|موقع|تحرير|فريق|خبرگزاری|خبر|"
    r"سایت|تحریریه|מערכת|חדשות)(?!\w)",
    re.I,
)
# Han names ending like an organisation: a daily, a network, an agency, a newsroom, an editor.
_CJK_ORGANISATION = re.compile(r"(?:[報报社網网台局部院會会司所]|新[闻聞]|[记記]者|[编編][辑輯])$")
_PARTICLES = {
    "van", "von", "de", "da", "del", "della", "dei", "di", "du", "des", "la", "le", "bin", "bint", "al", "el", "ibn",
    "ter", "ten", "der", "den", "dos", "das", "do", "y", "e", "i", "zu", "af", "st.",
}
# Han, kana and Hangul names are written without spaces ("肖春芳", "김민준").
_CJK_NAME = re.compile(r"^[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af]{2,4}$")
# Combining marks are no \w to `re`: Indic vowel signs ("चक्रवर्ती"), Hebrew and Arabic points, Thai.
_MARKS = "\u0300-\u036f\u0483-\u0489\u0591-\u05c7\u0610-\u061a\u064b-\u065f\u0670\u06d6-\u06ed\u0900-\u0dff\u0e00-\u0eff\u1000-\u109f"
_NAME_WORD = re.compile(rf"^[^\W\d_][\w'’.\-{_MARKS}]*$")
# "Charles Walton for SurgeZirc UK": the name and the outlet it wrote for.
_FOR_OUTLET = re.compile(r"^(.+?)\s+(?:for|für|pour|para)\s+\S.*$", re.I)
# Korean bylines: "스포츠조선=선수민 기자" (outlet=name reporter).
_KOREAN_OUTLET = re.compile(r"^[^=]{1,20}=\s*")
_KOREAN_TITLE = re.compile(r"\s*(?:객원|수습|선임)?(?:기자|특파원)$")


def parse_byline(raw: str | None) -> tuple[list[str], str | None]:
    """``(person names, agency)`` named by a byline string."""
    names, agency, _unread = _read_byline(raw)
    return names, agency


def _read_byline(raw: str | None) -> tuple[list[str], str | None, int]:
    """``(person names, agency, number of parts that were neither)``."""
    if not raw:
        return [], None, 0
    text = " ".join(matchable(raw).split())[:300]
    text = _BY_PREFIX.sub("", text)
    text = _TRAILER.sub("", text)
    # "Por Diêgo Holanda, G1 RO — Porto Velho": after a dash come the place, the outlet or the date.
    head = _DASHED.split(text, 1)[0]
    if head != text:
        before_dash = _read_byline(head)
        if before_dash[0]:
            return before_dash
    names: list[str] = []
    agency = None
    unread = 0
    for part in _SPLIT.split(_JOINED_SURNAME.sub(r"_\1_\2", _SENTENCE_END.sub(",", text))):
        part = part.replace("_", " ")
        part = _BY_PREFIX.sub("", part).strip(" .,:;()[]{}\"'“”‘’|*" + "\u2010\u2011\u2012\u2013\u2014\u2015\u2212-")
        if not part:
            continue
        found = agency_name(part) or _agency_with_title(part)
        if found:
            agency = agency or found
            continue
        name, found = _name_and_organisation(part)
        agency = agency or found
        if name:
            names.append(proper_case(name))
        else:
            unread += 1
    return names, agency, unread


def _name_and_organisation(part: str) -> tuple[str | None, str | None]:
    """A name, or a name followed by its agency or an outlet written in the other case ("Jane Doe
    Associated Press", "Kevin McCoy USA TODAY", "KENNETH VOGEL The New York Times"), the outlet it
    wrote for ("Jane Doe for The Times") or the time it was posted ("P. Mucović prije 26 minuta"):
    ``(name, agency)``."""
    if "=" in part or part.endswith(("기자", "특파원")):
        korean = _KOREAN_TITLE.sub("", _KOREAN_OUTLET.sub("", part))
        return (korean, None) if is_person_name(korean) else (None, None)
    if is_person_name(part):
        return part, None
    words = part.split()
    for cut in range(len(words) - 1, 1, -1):
        head, rest = " ".join(words[:cut]), words[cut:]
        agency = agency_name(" ".join(rest)) or _agency_with_title(" ".join(rest))
        shouting = all(w.isupper() and len(w) > 1 for w in rest) and any(c.islower() for c in words[cut - 1])
        if (agency or shouting) and is_person_name(head):
            return head, agency
    for cut in range(len(words) - 1, 1, -1):
        head, rest = " ".join(words[:cut]), words[cut:]
        if all(w.isupper() for w in words[:cut]) and any(c.islower() for c in rest[0]) and (
            is_person_name(head) and not is_person_name(" ".join(rest))
        ):
            return head, None
    outlet = _FOR_OUTLET.match(part)
    if outlet and is_person_name(outlet.group(1)):
        return outlet.group(1), None
    return _before_time(words), None


def _before_time(words: list[str]) -> str | None:
    """The name before a number and the lower-case words around it ("prije 26 minuta", "vor 3 Stunden")."""
    first = next((i for i, w in enumerate(words) if any(c.isdigit() for c in w)), None)
    if first is None:
        return None
    head = words[:first]
    while head and head[-1][:1].islower():
        head.pop()
    name = " ".join(head)
    return name if is_person_name(name) else None


def split_authors(raw: str | None) -> list[str]:
    """Person names out of a byline string; agencies, desks and titles dropped."""
    return parse_byline(raw)[0]


def _agency_with_title(part: str) -> str | None:
    """ "Associated Press Writer", "AP Sports Writer", "Reuters correspondent" name the agency."""
    words = part.split()
    for cut in range(len(words) - 1, 0, -1):
        name = agency_name(" ".join(words[:cut]))
        if name:
            rest = " ".join(words[cut:])
            return name if _NOT_PERSON.search(rest) else None
    return None


def is_person_name(name: str) -> bool:
    """Two to five capitalised words (particles allowed; scripts without capitals count as capitalised),
    or a two-to-four-character CJK name."""
    if not name or len(name) > 60:
        return False
    if _CJK_NAME.match(name):
        return not _CJK_ORGANISATION.search(name)
    if "@" in name or "/" in name or "http" in name.lower() or any(c.isdigit() for c in name):
        return False
    words = name.split()
    if not 1 < len(words) <= 5 or agency_name(name, strict=False) or _NOT_PERSON.search(name):
        return False
    if not all(_NAME_WORD.match(w) for w in words):
        return False
    # "Kevin McCoy USA TODAY": capitals after a mixed-case name are an outlet ("Jean DUPONT" stays a name).
    if any(c.islower() for c in name) and sum(1 for w in words if len(w) > 1 and w.isupper() and "." not in w) >= 2:
        return False
    capitalised = sum(1 for w in words if _capital(w))
    lower = [w for w in words if not _capital(w)]
    return capitalised >= 2 and all(w.lower() in _PARTICLES for w in lower)


def _capital(word: str) -> bool:
    """Capitalised, or written in a script without capitals (Arabic, Hebrew, Devanagari...)."""
    first = word[:1]
    return first.isupper() or first.isalpha() and first.lower() == first.upper()


def proper_case(name: str) -> str:
    """A name written in capitals in its usual case; other names as written."""
    if any(c.islower() for c in name):
        return name
    words = []
    for index, word in enumerate(name.split()):
        low = word.lower()
        if index and low in _PARTICLES:
            words.append(low)
        elif re.fullmatch(r"(?:[A-Z]\.)+|[IVX]+|[A-Z]", word):  # initials, numerals: "J.R.", "III"
            words.append(word)
        else:
            words.append(_case_word(low))
    return " ".join(words)


def _case_word(word: str) -> str:
    # Capitalise after apostrophes and hyphens (O'Brien, Jean-Paul); Mc/Mac prefixes (McDonald).
    cased = re.sub(r"(^|['’\-])(\w)", lambda m: m.group(1) + m.group(2).upper(), word)
    if re.match(r"mc\w{2,}", word):
        cased = "Mc" + word[2:].capitalize()
    return cased


# --- bylines in the page -------------------------------------------------------

_BYLINE_CLASS = re.compile(
    r"(?:^|[-_])(?:by-?line|byl|author|authors|author-?name|authorname|writer|creator|reporter|contributor)s?(?:[-_]|$)",
    re.I,
)
_NOT_BYLINE_CLASS = re.compile(
    r"avatar|image|img|photo|pic|bio|desc|about|heading|title|label|date|time|social|follow|twitter|"
    r"facebook|more|list|card|related|comment|meta-?data|icon|thumb|link-?list|email|role|job|position",
    re.I,
)
_NOT_THE_STORY = ("nav", "footer", "form")
_CONTAINER_CLASS = re.compile(r"comment|related|recommend|sidebar|footer|promo|newsletter|trending|popular", re.I)
# contains() is cheap in libxml2; normalize-space() on every text node was not (1.4 ms a page).
_BY_TEXT = etree.XPath(
    "//body//text()[contains(., 'By') or contains(., 'BY') or contains(., 'Von ') or contains(., 'Par ') or "
    "contains(., 'Por ')]"
)
# a union over the attribute axis: twice as fast as testing every element (results in page order)
_BYLINE_ELEMENTS = etree.XPath(
    '//body//@class[contains(., "yline") or contains(., "uthor") or contains(., "riter")]/..'
    '|//body//@rel[. = "author"]/..|//body//@itemprop[contains(., "author")]/..|//body//@id[contains(., "yline")]/..'
)
_BY_IN_HTML = re.compile(r">\s*(?:By|BY|Von|Par|Por)\s")
_BY_START = re.compile(r"^\s*(?:By|BY|Von|Par|Por)(?:\s|$)")
_MAX_BYLINE = 200


def _outside_story(el: HtmlElement, tags: tuple[str, ...] = _NOT_THE_STORY) -> bool:
    for a in el.iterancestors():
        if a.tag in ("body", "html"):
            break  # their classes describe the page ("sidebar-primary"), not the element's place
        if a.tag in tags or _CONTAINER_CLASS.search(f"{a.get('class', '')} {a.get('id', '')}"):
            return True
    return False


def markup_byline(tree: HtmlElement) -> tuple[list[str], str | None]:
    """Names from ``rel=author`` / ``itemprop=author`` / byline-classed elements, first match only.

    Only the first byline counts: later ones belong to related stories.
    """
    candidates = _BYLINE_ELEMENTS(tree)
    # Asides hold related stories, but also, on some blogs, the story's own byline: second choice.
    agency = None
    in_aside: list[str] = []
    for el in candidates:
        if el.tag in ("script", "style", "img", "meta", "link", "body", "html", "article", "section", "main"):
            continue
        rel = (el.get("rel") or "").lower()
        prop = (el.get("itemprop") or "").lower()
        classes = (el.get("class") or "").split() + [el.get("id") or ""]
        marked = rel == "author" or "author" in prop.split() or any(
            _BYLINE_CLASS.search(c) and not _NOT_BYLINE_CLASS.search(c) for c in classes
        )
        if not marked:
            continue
        text = " ".join(" ".join(el.itertext()).split())
        if not text or len(text) > _MAX_BYLINE:
            continue
        names, found = parse_byline(text)
        if not (names or found) or _outside_story(el, _NOT_THE_STORY):
            continue
        aside = _outside_story(el, ("aside",))
        if not aside:
            agency = agency or found
            if names:
                return names, agency
        elif names and not in_aside:
            in_aside = names
    return in_aside, agency


def text_byline(tree: HtmlElement, html: str | None = None) -> tuple[list[str], str | None]:
    """Names from the first short "By ..." line of the page (old layouts have no byline markup).

    `html`, the page's text, lets pages without such a line skip the tree search (a regex over the
    text costs a tenth of the search).
    """
    if html is not None and not _BY_IN_HTML.search(html):
        return [], None
    for node in _BY_TEXT(tree):
        if not _BY_START.match(node):
            continue
        parent = node.getparent()
        if parent is not None and node.is_tail:
            parent = parent.getparent()
        if parent is None or parent.tag in ("script", "style", "a", "option", "title") or _outside_story(
            parent, (*_NOT_THE_STORY, "aside", "li")
        ):
            continue
        block = parent
        for _ in range(2):
            if len(block.text_content().strip()) > 8 or block.getparent() is None:
                break
            block = block.getparent()
        line = " ".join(" ".join(block.itertext()).split())
        if len(line) > _MAX_BYLINE:
            line = " ".join(str(node).split())
        start = line.find(str(node).strip()[:2])
        names, agency = parse_byline(line[max(start, 0):])
        if names:
            return names, agency
    return [], None


def is_byline_line(line: str) -> bool:
    """A short line that is only a byline or an agency credit ("By JANE DOE", "Associated Press Writer")."""
    if len(line) > 150:
        return False
    text = matchable(line).strip()
    if agency_name(text) or _agency_with_title(text):
        return True
    by = _BY_PREFIX.match(text)
    if not by and not agency_in(text) or any(dateline(text)):
        return False
    names, agency, unread = _read_byline(text)
    if by:
        return bool(names or agency)
    # without "By": names and their agency and nothing else ("Jane Doe, Reuters", "Jane Doe | AP")
    return bool(names and agency) and not unread and len(text) <= 80
