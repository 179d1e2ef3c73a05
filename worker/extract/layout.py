"""Old layouts: tables used to place things on the page are not tables of data.

Pages built before CSS layout put the masthead, the navigation, the story and
the sidebars in the cells of nested tables. Read as a table, the page comes
out as rows of cells glued together: the sidebar's headlines next to the
story, the navigation row inside it. A table that only lays the page out is
turned into plain blocks before the main text is chosen, so the story cell
competes with the sidebars as the story column of any modern page does.

Which tables lay out: a ``role=presentation`` table, or one without the
marks of data (caption, summary, ``<th>``, ``<thead>``, ``<col>``) that holds
another table or has a cell holding a story's worth of text (500
characters). Small tables inside a story (a photo above its caption, a pull
quote) are left as they are: unwrapping them too lost story paragraphs.
"""

from __future__ import annotations

import re

from lxml import etree
from lxml.html import HtmlElement

from .walls import script_hints

_DATA_MARKS = ".//caption|.//th|.//thead|.//tfoot|.//col|.//colgroup"
STORY_CELL_CHARS = 500


def unwrap_layout_tables(tree: HtmlElement) -> int:
    """Turn layout tables into ``div`` blocks (decided on the page as it came); returns how many."""
    layout = [table for table in tree.xpath("//body//table") if is_layout_table(table)]
    for table in reversed(layout):
        _unwrap(table)
    return len(layout)


def is_layout_table(table: HtmlElement) -> bool:
    role = (table.get("role") or "").lower()
    if role == "presentation" or table.get("datatable") == "0":
        return True
    if table.get("summary") or table.xpath(_DATA_MARKS):
        return False
    if table.xpath(".//table"):
        return True
    # A grid laying out columns of a page: one of its cells holds a story's worth of text.
    # (Small tables inside a story, a photo above its caption or a pull quote, stay as they are.)
    cells = table.xpath("./tr/td|./tbody/tr/td")
    return any(len(" ".join(cell.text_content().split())) >= STORY_CELL_CHARS for cell in cells)


def _unwrap(table: HtmlElement) -> None:
    for el in table.xpath("./tbody|./thead|./tfoot"):
        el.drop_tag()
    for row in table.xpath("./tr"):
        for cell in row.xpath("./td|./th"):
            cell.tag = "div"
            for attr in ("colspan", "rowspan", "valign", "align", "width", "height", "nowrap"):
                cell.attrib.pop(attr, None)
        row.tag = "div"
    table.tag = "div"
    for attr in ("cellpadding", "cellspacing", "border", "width", "align", "bgcolor", "summary"):
        table.attrib.pop(attr, None)


def drop_scripts(tree: HtmlElement) -> str:
    """Remove scripts (JSON-LD kept), styles and drawings before the main text is chosen; returns the
    removed scripts' attributes for the bot-wall check.

    trafilatura drops them too, but only after copying the whole tree two or three times: removing
    them first made its extraction 3% cheaper on the scrapinghub pages, with the same text.
    """
    scripts = [s for s in tree.iter("script") if "ld+json" not in (s.get("type") or "")]
    hints = script_hints(scripts)
    for script in scripts:
        script.drop_tree()
    etree.strip_elements(tree, "style", "svg", "template", with_tail=False)
    return hints


# Attributes, not elements: a third of the cost of selecting the elements that carry them.
_HIDING_ATTRIBUTES = etree.XPath("//@style[contains(., 'none') or contains(., 'hidden')]|//@hidden")
_HIDDEN_STYLE = re.compile(r"(?:^|;)\s*(?:display\s*:\s*none|visibility\s*:\s*hidden)\s*(?:!important\s*)?(?:;|$)", re.I)
# Pages hidden whole until a script shows them are still pages.
_NEVER_HIDDEN = {"html", "head", "body"}


def drop_hidden(tree: HtmlElement) -> int:
    """Remove what the page itself hides from readers (``display: none`` or ``visibility: hidden`` in
    its inline style, the ``hidden`` attribute); returns how many elements went.

    An element holding the headline or an ``<article>`` stays: that is the page waiting for a script
    to show it, not furniture."""
    hidden = []
    for value in _HIDING_ATTRIBUTES(tree):
        el = value.getparent()
        if el is None or el.tag in _NEVER_HIDDEN or value.attrname == "style" and not _HIDDEN_STYLE.search(value):
            continue
        if el.find(".//h1") is None and el.find(".//article") is None:
            hidden.append(el)
    for el in hidden:
        if el.getparent() is not None:
            el.drop_tree()
    return len(hidden)
