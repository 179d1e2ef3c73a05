"""Main-text extraction: trafilatura's core extractor, then our clean-up.

trafilatura (run with ``fast=True``: its own main extractor and baseline
rescue, without the readability/jusText comparison) picks the article
container and drops most furniture. ``fast=True`` is both faster (~1.4x) and
slightly more accurate on our dev set than its default mode. On top of it we
drop the furniture lines it lets through (share prompts, "Read more" links,
photo credits, newsletter sign-ups, comment-form text), which was measured to
raise precision on the dev set without costing recall.
"""

from __future__ import annotations

import re

from lxml.etree import _Element
from lxml.html import HtmlElement
from trafilatura import bare_extraction
from trafilatura.settings import Extractor

_FURNITURE = re.compile(
    r"^(?:"
    r"advertisement|advertisements?|anzeige|publicité|publicidad|pubblicità|sponsored|"
    r"(?:read|see|watch|listen) (?:more|also|next|the full story|full story)\b.{0,120}|"
    r"related(?: (?:articles?|stories|coverage|content|posts?|news))?:?.{0,100}|"
    r"(?:share|tweet|email|print|comment)(?: (?:this|on \w+|article|story))?|"
    r"(?:follow|like) us on .{0,60}|"
    r"(?:sign up|subscribe) (?:for|to) (?:our|the) .{0,40}newsletters?.{0,80}|"
    r"(?:subscribe|sign up|become a (?:subscriber|member)|support local journalism)\b.{0,80}"
    r"\b(?:unlimited|full|digital|premium|complete) access\b.{0,60}|"
    r"leave a (?:reply|comment)|your email address will not be published\.?.{0,80}|"
    r"required fields are marked.{0,20}|"
    r"(?:previous|next) (?:story|post|article)|"
    r"(?:back|return|go|jump|skip) to (?:the )?(?:top|main content|content)(?: of (?:the )?page)?|top of (?:the )?page|"
    r"(?:filed under|posted in|tagged(?: with)?|tags|categories|category|topics)\s*:.{0,150}|"
    r"\+ posts|"
    r"(?:photo|image|file photo|credit|photograph)s?: ?.{0,80}|"
    r"click (?:here|to) .{0,80}|"
    r"copyright ©?.{0,80}all rights reserved\.?|"
    r"all rights reserved\.?|"
    r"we'?re sorry,? this feature is currently unavailable.{0,80}|"
    r"this (?:video|content|element) (?:is|can ?not|could not) .{0,80}(?:available|loaded|displayed)\.?"
    r")$",
    re.I,
)
LINK_START, LINK_END = "\ue000", "\ue001"
_MARKERS = re.compile("[\ue000\ue001]")
_LINK_SPAN = re.compile("\ue000([^\ue000\ue001]*)\ue001")
# Calls to action that close many stories: "Follow us on Twitter", "Sign up for
# our newsletter", "Email the author at ...". Only short lines that start with
# the imperative and name a channel, so reported speech is never matched.
_CALL_TO_ACTION = re.compile(
    r"^(?:follow|subscribe|sign up|get|listen|download|email|write to|like this|share|click|tap|have a tip|"
    r"contact|join|don'?t miss|want more|for more|watch|read|see|visit)\b.{0,200}"
    r"(?:twitter|facebook|instagram|youtube|linkedin|newsletter|inbox|subscribe|podcast|@\w|https?://|"
    r"\bapp\b|e-?mail|itunes|spotify|here\b|click)",
    re.I,
)
# Below this many characters from the fast extractor, the thorough one is tried
# as well and kept when it finds more (dev sets: fast found 150-450 characters
# of pages whose stories are 1-4 kB; above ~500 the thorough mode's extra text
# was mostly furniture).
SHORT_BODY_CHARS = 500
# A result that is a long run of short lines (a site menu: 20 lines or more,
# four in five under 40 characters) is checked against the thorough mode too
# (so were all results under half prose: 13 extra runs on the dev sets for the
# same single gain), and the thorough result taken when it is at least twice
# as much prose and holds a story's worth of it.
MENU_MIN_LINES, MENU_SHORT_LINE, MENU_SHORT_SHARE = 20, 40, 0.8
MIN_STORY_CHARS = 200
_SENTENCE_END = re.compile(r"[.!?…:;\"”’»)\]。！？]\s*$")
# A single text node this long is not an article paragraph.
MAX_PARAGRAPH_CHARS = 50_000
_ROW_SEPARATOR = re.compile(r"\s[|•·]\s")
_LONE_SEPARATOR = re.compile(r"[ \t]*\n[ \t]*([|•·])[ \t]*\n[ \t]*")
# a publisher's address row is looked for only among the last lines of the body (a footer under the story)
_TAIL_LINES = 3
_PHONE = re.compile(r"(?:\+\d{1,3}[\s.-]?)?\(?\d{2,4}\)?[\s.-]\d{3,4}[\s.-]\d{3,4}\b")
_WS = re.compile(r"[ \t\u00a0\u2009\u200a\u202f]+")
# a line break inside a sentence: before a lowercase letter (not after a sentence's end), or after a comma
_WRAPPED = re.compile(r"(?<![.!?:;\s])[ \t]*\r?\n\s*(?=[^\W\d_A-Z])|(?<=,)[ \t]*\r?\n\s*(?=\S)")


def trafilatura_paragraphs(tree: HtmlElement, url: str | None, *, fast: bool = True, marked: bool = False) -> list[str]:
    """Paragraphs of the main text as trafilatura sees it, minus link furniture (may be empty).

    `fast` runs trafilatura's own extractor only; without it trafilatura also
    compares its result with readability's and jusText's (slower; better only
    where its own extractor found next to nothing: see SHORT_BODY_CHARS).

    trafilatura works on a copy of the tree: the tree only gains link markers
    (``marked`` says they are there already), so the caller may read it again.
    """
    work = tree
    if not marked:
        _mark_links(work)
    options = Extractor(output_format="python", fast=fast, comments=False, tables=True, formatting=False, url=url)
    doc = bare_extraction(work, options=options)
    if doc is None or isinstance(doc, dict) or doc.body is None:
        return []
    return body_paragraphs(doc.body)


def _mark_links(tree: HtmlElement) -> None:
    """Wrap link text in private-use markers so we can measure link density afterwards.

    trafilatura's ``links=True`` would keep <ref> elements but also changes
    which blocks it keeps (measured: more furniture, lower F1), so its
    default link handling runs and the markers carry the information through.
    """
    for a in tree.iter("a"):
        if not a.get("href"):
            continue
        a.text = LINK_START + (a.text or "")
        if len(a):
            last = a[-1]
            last.tail = (last.tail or "") + LINK_END
        else:
            a.text += LINK_END


def _text(el: _Element) -> str:
    """Element text with <lb/> as a line break and whitespace collapsed per line."""
    parts: list[str] = []

    def walk(node: _Element, code: bool = False) -> None:
        code = code or node.tag == "code"
        if node.tag == "lb":
            parts.append("\n")
        elif node.text:
            parts.append(node.text if code else _unwrap(node.text))
        for child in node:
            walk(child, code)
            if child.tail:
                parts.append(child.tail if code else _unwrap(child.tail))
        if node.tag in ("item", "p", "head", "row", "quote") and node is not el:
            parts.append("\n")
        elif node.tag == "cell":
            parts.append(" | ")

    walk(el)
    # trafilatura may put a row's "|" on a line of its own ("Contact Us\n|\nAdvertise"): one row again
    text = _LONE_SEPARATOR.sub(r" \1 ", "".join(parts))
    return "\n".join(_collapse(line).strip(" |") for line in text.split("\n"))


def _unwrap(text: str) -> str:
    """A text node's line breaks inside a sentence are spaces, as a browser shows them: a page whose
    source wraps a paragraph over several lines holds one paragraph, not one per line. A break before
    a lowercase word, or after a comma, is such a wrap; others stay (a menu written one item per line
    must still look like one). ``<br>`` (trafilatura's ``<lb/>``) and block ends always break."""
    if "\n" not in text:
        return text
    return _WRAPPED.sub(" ", text)


def _collapse(line: str) -> str:
    """One line cut to MAX_PARAGRAPH_CHARS, then its whitespace runs made single spaces.

    The cut comes first: the regex over 7.5 MB of one text node took ~0.6 s,
    only for the paragraph to be cut afterwards.
    """
    return _WS.sub(" ", line[:MAX_PARAGRAPH_CHARS])


def unmark(text: str) -> str:
    """`text` without the link markers `_mark_links` put in the tree (trafilatura and our readers of the
    tree after it see them)."""
    return _MARKERS.sub("", text)


def _link_density(text: str) -> float:
    """Share of the visible characters of `text` that sit inside link markers."""
    plain = unmark(text).strip()
    if not plain:
        return 0.0
    linked = sum(len(span.strip()) for span in _LINK_SPAN.findall(text))
    return min(1.0, linked / len(plain))


def _lines(text: str) -> list[str]:
    """The lines of a block, without rows of links ("Printer-friendly version | E-mail this story",
    "Home | News | Sports" between <br>s). (Every line of two or more links was measured too: it cost
    lists of links the dev sets count as text.)"""
    out = []
    for raw in text.split("\n"):
        line = _collapse(unmark(raw)).strip()
        if line and not (
            len(line) < 160 and raw.count(LINK_START) >= 2 and _ROW_SEPARATOR.search(line) and _link_density(raw) >= 0.8
        ):
            out.append(line)
    return out


def body_paragraphs(body: _Element) -> list[str]:
    """trafilatura's XML body -> paragraphs, dropping the furniture it keeps.

    Dropped: the headline (``<head rend="h1">``) and a standfirst heading right
    after it; lists whose items are links (related stories); short paragraphs
    that are a link and nothing else ("Who will make the Rock Hall in 2020?");
    after the story's last paragraph, lists of teasers (linked headline over a
    line of text); headings left dangling at the end once those are gone.
    """
    out: list[tuple[str, bool]] = []  # (text, is_heading)
    children = list(body)
    texts = [_text(el).strip() for el in children]
    last_prose = max((i for i, (el, text) in enumerate(zip(children, texts, strict=True)) if _is_prose(el, text)), default=-1)
    seen_prose = False
    for index, el in enumerate(children):
        text = texts[index]
        if index > last_prose >= 0 and _trailing_furniture(el, text):
            continue
        if text and _keep_block(el, text, children[index - 1] if index else None, seen_prose):
            is_heading = el.tag == "head"
            seen_prose = seen_prose or not is_heading
            out.extend((line, is_heading) for line in _lines(text))
        if el.tail and el.tail.strip():
            # Text between blocks is a paragraph of its own (trafilatura keeps
            # it as the tail of the preceding element).
            out.extend((line, False) for line in _lines(_unwrap(el.tail)))
    while out and out[-1][1]:
        out.pop()
    return [text for text, _ in out]


def _first_line(text: str) -> str:
    """The first line with visible text (link markers kept)."""
    return next((line for line in text.split("\n") if unmark(line).strip()), "")


def _is_prose(el: _Element, text: str) -> bool:
    return el.tag in ("p", "quote") and (len(text) >= 80 or bool(_SENTENCE_END.search(text))) and (
        _link_density(text) < 0.5
    )


def _trailing_furniture(el: _Element, text: str) -> bool:
    """After the story's last paragraph: lists of teasers, each item a linked headline over a line of
    text (the headings over them, "More NFL", are then left dangling and go too)."""
    if el.tag == "list":
        items = [_text(item).strip() for item in el.iter("item")]
        items = [item for item in items if item]
        teasers = sum(1 for item in items if _link_density(_first_line(item)) > 0.8)
        return bool(items) and teasers >= 0.6 * len(items)
    return False


def _keep_block(el: _Element, text: str, previous: _Element | None, seen_prose: bool) -> bool:
    # The headline, and a standfirst heading right under it, are not body text.
    if (
        el.tag == "head"
        and not seen_prose
        and (el.get("rend") == "h1" or previous is not None and previous.get("rend") == "h1")
    ):
        return False
    if el.tag == "list":
        items = [_text(item) for item in el.iter("item")]
        items = [item for item in items if item.strip()]
        linky = sum(1 for item in items if _link_density(item) > 0.5)
        return not items or linky / len(items) < 0.6
    if el.tag in ("p", "quote") and len(text) < 160:
        return _link_density(text) <= 0.8
    return True


def drop_furniture(paragraphs: list[str], strip_text: tuple[re.Pattern[str], ...] = ()) -> list[str]:
    """Remove lines that are page furniture (and per-source ``strip_text`` matches), and the site's
    footer rows under the story ("Courier · 114 Main Street · Millbrook, Ohio · (555) 555-0134")."""
    kept = []
    for index, para in enumerate(paragraphs):
        if index >= len(paragraphs) - _TAIL_LINES and _is_footer_row(para):
            continue
        stripped = para.strip(" -–—•|·»>")
        if len(para) < 200 and _FURNITURE.match(stripped) or len(para) < 250 and _CALL_TO_ACTION.match(stripped):
            continue
        if strip_text and any(p.search(para) for p in strip_text):
            continue
        kept.append(para)
    return kept


def _is_footer_row(line: str) -> bool:
    """A short row of three or more parts split by ``·``, ``|`` or ``•``, with a phone number among them
    (the publisher's address line) or every part a few words that are no sentence ("Contact Us |
    Advertise | Privacy Policy", where the links' marks were lost): a site's footer, never the story."""
    if len(line) >= 200:
        return False
    parts = _ROW_SEPARATOR.split(line)
    if len(parts) < 3:
        return False
    return bool(_PHONE.search(line)) or all(len(p.split()) <= 4 and not _SENTENCE_END.search(p) for p in parts)


def prose_chars(paragraphs: list[str]) -> int:
    """Characters in paragraphs that read as prose: long, or ending like a sentence."""
    return sum(len(p) for p in paragraphs if len(p) >= 80 or _SENTENCE_END.search(p))


def prose_share(paragraphs: list[str]) -> float:
    total = sum(len(p) for p in paragraphs)
    return prose_chars(paragraphs) / total if total else 1.0


def looks_like_a_menu(paragraphs: list[str]) -> bool:
    short = sum(1 for p in paragraphs if len(p) < MENU_SHORT_LINE)
    return len(paragraphs) >= MENU_MIN_LINES and short >= MENU_SHORT_SHARE * len(paragraphs)
