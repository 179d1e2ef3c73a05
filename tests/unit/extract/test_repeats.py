"""A paragraph the page repeats side by side is repeated in the body; a copy elsewhere on the page is not."""

from __future__ import annotations

from worker.extract import extract

LEDE = "The council voted on Monday to keep the library open on Sundays, after a debate that ran past midnight."
OTHER = [f"Paragraph {i} of the story goes on about the budget, the staff and the hours the branch keeps." for i in range(4)]


def _page(story: str, elsewhere: str = "") -> bytes:
    return (f"<html><head><title>Library</title></head><body>{elsewhere}<article><h1>Library stays open</h1>"
            f"{story}</article></body></html>").encode()


def test_a_paragraph_said_twice_in_the_story_stays_twice() -> None:
    """trafilatura keeps one copy of identical blocks; the page shows two, side by side in the story."""
    story = "".join(f"<p>{p}</p>" for p in [LEDE, LEDE, *OTHER])
    assert extract(_page(story)).body.split("\n\n").count(LEDE) == 2


def test_a_teaser_repeating_the_lede_elsewhere_adds_nothing() -> None:
    """The lede again in a box outside the story (a summary, a teaser) is not the story saying it twice."""
    story = "".join(f"<p>{p}</p>" for p in [LEDE, *OTHER])
    teaser = f'<aside><div class="teaser"><p>{LEDE}</p></div></aside>'
    assert extract(_page(story, teaser)).body.split("\n\n").count(LEDE) <= 1


def test_as_many_copies_as_the_page_has() -> None:
    """Three copies side by side give three paragraphs, not more; a paragraph said once stays once."""
    story = "".join(f"<p>{p}</p>" for p in [OTHER[0], LEDE, LEDE, LEDE, *OTHER[1:]])
    paragraphs = extract(_page(story)).body.split("\n\n")
    assert paragraphs.count(LEDE) == 3
    assert all(paragraphs.count(p) == 1 for p in OTHER)
