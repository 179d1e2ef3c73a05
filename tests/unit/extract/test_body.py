"""Main-text choices that need real pages: the thorough mode as a second opinion (dev-set pages in tests/fixtures/devset)."""

from __future__ import annotations

import gzip
import json
import re
from collections import Counter

import pytest

from tests.support import paths
from worker.extract import extract
from worker.extract.furniture import Template

DEVSET = paths.FIXTURES / "devset"


def _shingles(text: str) -> list[tuple[str, ...]]:
    """The benchmark's unit: windows of four words."""
    words = re.findall(r"\w+", text)
    return [tuple(words[i:i + 4]) for i in range(len(words) - 3)]


def _page(bench: str, page_id: str) -> tuple[bytes, dict[str, str]]:
    folder = DEVSET / bench
    truth = json.loads((folder / "truth.json").read_text(encoding="utf-8"))
    key = next(k for k in truth if k.startswith(page_id))
    return gzip.decompress((folder / truth[key]["file"]).read_bytes()), truth[key]


@pytest.mark.parametrize("page_id", ["dev418", "svg-parsing"])
def test_thorough_mode_when_the_fast_one_finds_little(page_id: str) -> None:
    """Where trafilatura's fast extractor finds a few hundred characters of a longer story, the thorough
    mode's longer result is taken: most of the story's four-word windows are in the body (fast mode: under a fifth)."""
    html, truth = _page("readability", page_id)
    gold, got = Counter(_shingles(truth["body"])), Counter(_shingles(extract(html).body))
    assert sum((gold & got).values()) >= 0.8 * sum(gold.values())


def test_thorough_mode_when_the_fast_one_returns_a_menu() -> None:
    """A fast result that is mostly short non-sentence lines (a site menu) loses to a thorough result
    that is twice as much prose: the story, without the menu."""
    html, truth = _page("scrapinghub", "f6ac15a4")
    body = extract(html, truth["url"]).body
    assert truth["body"].split(".")[0] in body
    assert "Ouvidoria SUS" not in body and "Galeria dos Prefeitos" not in body


STORY = "".join(
    f"<p>Paragraph {i} of an ordinary news story, long enough to count as prose for the extractor to keep.</p>"
    for i in range(6)
)


def test_teaser_lists_after_the_story_go_with_their_headings() -> None:
    """After the last paragraph, a list whose items are a linked headline over a line of text is a rail of
    other stories: it goes, and so do the headings left dangling above it ("More NFL")."""
    teasers = "".join(
        f'<li><a href="/s/{i}"><img src="/i/{i}.jpg"></a><a href="/s/{i}">Other headline number {i}</a><br>'
        f"A one-line teaser for the other story number {i}</li>"
        for i in range(5)
    )
    html = (f"<html><head><title>T</title></head><body><article>{STORY}<h3>Pick Six Newsletter</h3>"
            f"<h3>More NFL</h3><ul>{teasers}</ul></article></body></html>").encode()
    body = extract(html).body
    assert body.endswith("Paragraph 5 of an ordinary news story, long enough to count as prose for the extractor to keep.")
    assert "Other headline" not in body and "teaser" not in body and "More NFL" not in body


def test_a_list_inside_the_story_stays() -> None:
    """A list between paragraphs of the story, even one of links, is not a rail after it."""
    items = "".join(f'<li><a href="/r/{i}">Result number {i}</a><br>Scored {i} points in the final</li>' for i in range(5))
    html = (f"<html><head><title>T</title></head><body><article>{STORY[:300]}<ul>{items}</ul>{STORY}"
            "</article></body></html>").encode()
    assert "Result number 3" in extract(html).body


def test_a_paragraph_wrapped_in_the_source_is_one_paragraph() -> None:
    """Hand-written pages wrap a block's text over many source lines; a browser shows one paragraph, and so
    does the body. A menu written one item per line is still many lines (and still loses to the story)."""
    wrapped = ("<div>\n        The council met on Monday and voted,\n        after a long debate, to keep the\n"
               "        library open on Sundays. The mayor said the vote\n        was close.\n    </div>")
    html = f"<html><head><title>T</title></head><body><article>{wrapped}{STORY}</article></body></html>".encode()
    paragraphs = extract(html).body.split("\n\n")
    assert ("The council met on Monday and voted, after a long debate, to keep the library open on Sundays. "
            "The mayor said the vote was close.") in paragraphs


def test_an_old_layout_footer_under_the_story_is_not_text() -> None:
    """A table-layout page's footer row ("Back to top", a "|" row of links, the publisher's address and phone)
    is furniture, even where trafilatura's fallback path loses which words were links."""
    paragraphs = [f"Paragraph {i} of the council story tells of budgets, votes and the hours the library keeps."
                  for i in range(5)]
    story = "<BR><BR>\n".join(paragraphs)
    html = f"""<HTML><HEAD><TITLE>Courier - Library stays open</TITLE></HEAD><BODY><A NAME="top"></A>
<TABLE WIDTH="760"><TR><TD WIDTH="600" VALIGN="TOP"><TABLE WIDTH="100%"><TR><TD>
<FONT SIZE="5"><B>Library stays open</B></FONT><BR><BR><FONT FACE="Times New Roman, Times" SIZE="3">
{story}
</FONT><BR><BR><HR SIZE="1" NOSHADE><FONT SIZE="1">Copyright &copy; 2026 Millbrook Courier. All rights reserved.</FONT>
</TD></TR></TABLE></TD></TR>
<TR><TD COLSPAN="2" ALIGN="CENTER"><FONT FACE="Arial, Helvetica" SIZE="1"><A HREF="#top">Back to top</A><BR>
<A HREF="/contact.html">Contact Us</A> | <A HREF="/advertise.html">Advertise</A> | <A HREF="/privacy.html">Privacy Policy</A><BR>
Millbrook Courier &middot; 114 Main Street &middot; Millbrook, Ohio 45000 &middot; (555) 555-0134
</FONT></TD></TR></TABLE></BODY></HTML>""".encode()
    assert extract(html).body == "\n\n".join(paragraphs)


def test_what_the_page_hides_is_not_text() -> None:
    """Blocks hidden by their inline style or the hidden attribute are not the story's text."""
    hidden = ('<p style="visibility: hidden;">A hidden paragraph the reader never sees on the page, long enough for prose.</p>'
              '<p style="color: red; display:none !important">A print-only paragraph of the masthead, long enough for prose.</p>'
              "<p hidden>A template paragraph for the comment form, long enough to count as prose here.</p>")
    html = (f"<html><head><title>T</title></head><body><article>{STORY[:300]}{hidden}{STORY}"
            "</article></body></html>").encode()
    body = extract(html).body
    assert "hidden paragraph" not in body and "masthead" not in body and "comment form" not in body
    assert "Paragraph 5 of an ordinary news story" in body


def test_filed_under_lines_are_furniture() -> None:
    """'Filed under: ...' and 'Tags: ...' lines under a story are not its text."""
    html = (f"<html><head><title>T</title></head><body><article>{STORY}<p>Filed under: Politics, Elections</p>"
            "<p>Tags: senate, budget</p></article></body></html>").encode()
    body = extract(html).body
    assert "Filed under" not in body and "Tags:" not in body


def test_furniture_given_by_the_caller_is_dropped() -> None:
    """Lines of the site's furniture the caller passes (its learned template) leave the body; they are
    compared ignoring case, spacing and punctuation; without them the line stays."""
    promo = "Read the Valley Courier's weekend edition, on sale at all good newsagents this Saturday."
    html = (f"<html><head><title>T</title></head><body><article>{STORY}<p>{promo}</p>"
            "</article></body></html>").encode()
    assert promo in extract(html).body
    known = Template.of_lines(["READ the Valley  Courier's weekend edition on sale at all good newsagents this saturday"])
    got = extract(html, furniture=known)
    assert promo not in got.body and "Paragraph 5" in got.body and got.furniture == (promo,)
