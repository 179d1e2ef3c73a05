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
from copy import deepcopy

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
    r"leave a (?:reply|comment)|your email address will not be published\.?.{0,80}|"
    r"required fields are marked.{0,20}|"
    r"(?:previous|next) (?:story|post|article)|"
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
_LINE_SPLIT = re.compile(r"\n+")
_WS = re.compile(r"[ \t\u00a0\u2009\u200a\u202f]+")


def trafilatura_paragraphs(tree: HtmlElement, url: str | None, *, copy_tree: bool) -> list[str]:
    """Paragraphs of the main text as trafilatura sees it (may be empty)."""
    work = deepcopy(tree) if copy_tree else tree
    options = Extractor(
        output_format="python", fast=True, comments=False, tables=True, formatting=False, url=url
    )
    doc = bare_extraction(work, options=options)
    if doc is None or isinstance(doc, dict) or not doc.text:
        return []
    return split_paragraphs(doc.text)


def split_paragraphs(text: str) -> list[str]:
    out = []
    for line in _LINE_SPLIT.split(text):
        line = _WS.sub(" ", line).strip()
        if line:
            out.append(line)
    return out


def drop_furniture(paragraphs: list[str], strip_text: tuple[re.Pattern[str], ...] = ()) -> list[str]:
    """Remove lines that are page furniture (and per-source ``strip_text`` matches)."""
    kept = []
    for para in paragraphs:
        if len(para) < 200 and _FURNITURE.match(para.strip(" -–—•|·»>")):
            continue
        if strip_text and any(p.search(para) for p in strip_text):
            continue
        kept.append(para)
    return kept
