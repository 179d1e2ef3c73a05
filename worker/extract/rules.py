"""Per-source rules (``body``, ``strip``, ``strip_text``) applied with BeautifulSoup.

Why BeautifulSoup here and nowhere else: operators write these selectors in
``sources.yaml`` and test them with ``wire extract``; soupsieve (BeautifulSoup's
selector engine) implements modern CSS (``:has()``, ``:is()``, ``:not()`` with
lists, attribute operators, ``:-soup-contains()``) with browser semantics,
which is what operators expect. Building its tree costs ~15-20 ms per page, so
it is only paid for sources that have rules; the generic path stays on lxml.
"""

from __future__ import annotations

from bs4 import BeautifulSoup
from bs4.element import Tag

from worker.models import Rules

_BLOCKS = ("p", "h1", "h2", "h3", "h4", "h5", "h6", "li", "blockquote", "pre", "tr", "dt", "dd", "figcaption")


def _stripped(html: str, rules: Rules) -> BeautifulSoup:
    """The page parsed, with every ``strip`` selector match removed."""
    soup = BeautifulSoup(html, "lxml")
    for selector in rules.strip:
        for el in soup.select(selector):
            el.decompose()
    return soup


def apply_strip(html: str, rules: Rules) -> str:
    """The page with every ``strip`` selector match removed (serialised again for lxml)."""
    if not rules.strip:
        return html
    return str(_stripped(html, rules))


def rule_body(html: str, rules: Rules) -> list[str] | None:
    """Paragraphs under the ``body`` selector, or None when it matches nothing."""
    if not rules.body:
        return None
    matches = _stripped(html, rules).select(rules.body)
    if not matches:
        return None
    paragraphs: list[str] = []
    for root in matches:
        for el in root.find_all(("script", "style", "noscript", "template")):
            el.decompose()
        blocks = [b for b in root.find_all(_BLOCKS) if not b.find_parent(_BLOCKS) or b.parent is root]
        if not blocks:
            blocks = [root]
        for block in blocks:
            if isinstance(block, Tag):
                text = " ".join(block.get_text(" ").split())
                if text:
                    paragraphs.append(text)
    return paragraphs
