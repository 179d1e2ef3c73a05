"""Paragraphs the page repeats, repeated in the body too.

trafilatura collapses identical blocks (its recovery pass and its check
for a block repeating the one before it both drop exact repeats), so a
story that says the same thing twice, or a page built of repeated
sections, came out shorter than the page a reader sees. A repeat is put
back only where the page itself has it: the same text in sibling blocks
of the container that holds the kept copy (a teaser or summary elsewhere
on the page that repeats the lede is not the story saying it twice).

Most pages repeat nothing, and the test for it must cost next to nothing
(extraction speed is a target): the source is searched only between the
story's first and last paragraphs, and the tree only when a paragraph's
opening shows up twice there right after a tag.
"""

from __future__ import annotations

import re
from collections import Counter

from lxml.html import HtmlElement

from .body import unmark

# long enough to be a paragraph of prose: short lines ("Advertisement", "Share") repeat as furniture
MIN_CHARS = 80
_PREFIX = 24  # characters of a paragraph's opening looked for in the source
_BLOCKS = ("p", "div", "blockquote", "li", "td", "section")
_WS = re.compile(r"\s+")
# the opening of a text right after a tag: copies in JSON-LD or a meta description (after a quote) are not
_AFTER_A_TAG = re.compile(rf">\s*([^<\s][^<]{{{_PREFIX - 1}}})")


def restore_repeats(tree: HtmlElement, source: str, paragraphs: list[str]) -> list[str]:
    """`paragraphs` with each long one repeated as often as sibling blocks of the page repeat it (the extra
    copies follow the kept one)."""
    counts = Counter(p for p in paragraphs if len(p) >= MIN_CHARS)
    if not counts:
        return paragraphs
    longs = [p for p in paragraphs if p in counts]
    start = source.find(longs[0][:_PREFIX])
    end = source.rfind(longs[-1][:_PREFIX])
    if start < 0 or end < 0:
        return paragraphs  # an opening the source spells otherwise (entities, markup): nothing to compare
    # the story's span of the source; the whole source when its last paragraph opens before its first
    lo, hi = (max(0, source.rfind(">", 0, start)), end + _PREFIX) if end >= start else (0, len(source))
    openings = Counter(_AFTER_A_TAG.findall(source, lo, hi))
    suspects = {p for p in counts if openings[p[:_PREFIX]] >= 2}
    if not suspects:
        return paragraphs
    extra = _extra_copies(tree, suspects, counts)
    if not extra:
        return paragraphs
    out: list[str] = []
    for index, para in enumerate(paragraphs):
        out.append(para)
        if para in extra and para not in paragraphs[index + 1:]:
            out.extend([para] * extra[para])
    return out


def _extra_copies(tree: HtmlElement, suspects: set[str], counts: Counter[str]) -> dict[str, int]:
    """For each suspect paragraph, how many more copies than the body has sit side by side in one
    container of the page (leaf blocks whose whole text is the paragraph)."""
    openings = {p[:8] for p in suspects}
    siblings: dict[str, Counter[HtmlElement]] = {p: Counter() for p in suspects}
    for el in tree.iter(_BLOCKS):
        head = (el.text or "").lstrip()
        if not head and len(el):
            head = (el[0].text or "").lstrip()
        if head[:8] not in openings or any(isinstance(c.tag, str) and c.tag in _BLOCKS for c in el):
            continue
        text = _WS.sub(" ", unmark(el.text_content())).strip()
        if text in siblings:
            siblings[text][el.getparent()] += 1
    extra = {p: max(found.values()) - counts[p] for p, found in siblings.items() if found}
    return {p: n for p, n in extra.items() if n > 0}
