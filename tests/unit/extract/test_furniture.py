"""Learned site furniture, the pure part: line keys, which lines a page counts, when a line is furniture,
and extraction dropping it."""

from __future__ import annotations

from tests.support.newsroom import NEWSROOM, oldstyle
from worker.extract import extract
from worker.extract.furniture import (
    MAX_SIGHTINGS,
    BlockStats,
    Template,
    block_key,
    is_prose,
    sightings,
    snippet,
)

STORY = [
    "OROVILLE, Calif. (AP) — Authorities ordered nearly 13,000 people to leave their homes below the nation's "
    "tallest dam on Sunday after engineers found a widening crack in its emergency spillway.",
    "The sheriff's office said deputies went door to door in three towns along the Feather River.",
    "State water officials said the reservoir had risen to within a foot of its crest after a week of storms, "
    "forcing them to send water over the emergency spillway for the first time since the dam was finished.",
    "Helicopters dropped bags of rock into the eroded channel below the spillway while crews cut the flow "
    "through the main chute, which had itself been damaged earlier in the week when a hole opened in it.",
    "Traffic backed up for miles on Highway 70 and Highway 99 as families packed cars with pets, photographs "
    "and bedding, and several gas stations in Oroville ran out of fuel by early evening on Sunday.",
    "Gov. Jerry Brown issued an emergency order to speed up the response and said the state had asked the "
    "federal government for help with the repairs and with the cost of the evacuation.",
    "Officials did not say when residents would be allowed to return.",
]


def _learned(text: str, stories: int = 3, hits: int = 3, first: int = 1) -> tuple[bytes, BlockStats]:
    key = block_key(text)
    assert key is not None
    return key, BlockStats(stories, hits, first, first + hits - 1, 0, text[:32])


def test_lines_are_keyed_by_their_words_with_digits_folded() -> None:
    """Case, punctuation, spacing and the numbers in a line do not change its key; its words do."""
    assert block_key("Comments (12)") == block_key("comments  (3)")
    assert block_key("Printer-friendly version | E-mail this story") == block_key("printer friendly version e mail "
                                                                                  "this story")
    assert block_key("Back to top") != block_key("Back to the top")
    assert block_key(" | — ") is None


def test_snippets_are_cut_between_characters() -> None:
    """A snippet is at most 32 bytes of UTF-8 and never ends inside a character."""
    cut = snippet("Überschwemmungen in Süddeutschland: Pegelstände steigen")
    assert len(cut) <= 32 and cut.decode("utf-8")


def test_prose_is_a_long_sentence() -> None:
    """Fifteen words or more ending like a sentence; a headline, a link row or a short sentence is not."""
    assert is_prose(STORY[0]) and not is_prose(STORY[-1])
    assert not is_prose("Home | News | Sports | Business | Opinion | Classifieds | Obituaries | Subscribe to the "
                        "print edition of the paper today for less")


def test_a_page_counts_its_short_lines_and_edges_but_not_long_prose_inside_the_story() -> None:
    """Long paragraphs of prose inside the story (not among its first 3 or last 6 lines) are never counted;
    short lines anywhere, the edges and every dropped line are, each once."""
    inner = [f"{p} More words follow here." for p in STORY[2:6]]
    body = ["Home | News | Sports", *STORY[:2], *inner, "Read the full report", *STORY, "Back to top"]
    keys = [k for k, _ in sightings(body, ["Most Popular Stories"])]
    assert not {block_key(p) for p in inner} & set(keys)
    assert {block_key(line) for line in ("Home | News | Sports", STORY[0], "Read the full report", STORY[2],
                                         "Back to top", "Most Popular Stories")} <= set(keys)
    assert len(keys) == len(set(keys))


def test_a_page_counts_at_most_max_sightings_lines_from_both_ends() -> None:
    """A page of hundreds of short lines counts MAX_SIGHTINGS of them, the first and the last ones."""
    lines = [f"Result row {chr(65 + i % 26)}{chr(65 + i // 26)} listed" for i in range(300)]
    keys = [k for k, _ in sightings(lines)]
    assert len(keys) == MAX_SIGHTINGS
    assert block_key(lines[0]) in keys and block_key(lines[-1]) in keys and block_key(lines[150]) not in keys


def test_a_line_is_furniture_on_three_stories_and_a_share_of_the_pages() -> None:
    """Three stories and 30% of the host's pages since the line appeared make a short line furniture;
    prose needs four stories and 60%."""
    short = BlockStats(stories=3, hits=3, first=1, last=3, minute=0)
    assert short.learned(pages=3) and short.learned(pages=10) and not short.learned(pages=11)
    assert not BlockStats(stories=2, hits=9, first=1, last=9, minute=0).learned(pages=9)
    assert not short.learned(pages=3, prose=True)
    assert BlockStats(stories=4, hits=6, first=5, last=10, minute=0).learned(pages=14, prose=True)
    assert not BlockStats(stories=4, hits=6, first=5, last=10, minute=0).learned(pages=15, prose=True)


def test_a_template_drops_its_learned_lines_only() -> None:
    """Learned lines go, in page order; a line still counting, an unknown one and a prose line held to the
    prose bar stay."""
    nav, top = _learned("Home | News | Sports"), _learned("Back to top")
    counting = _learned("Most Popular Stories", stories=2)
    prose_line = _learned(STORY[0])  # 3 stories: enough for a short line, not for prose
    template = Template("x.example", pages=3, blocks=dict([nav, top, counting, prose_line]))
    body = ["Home | News | Sports", "Most Popular Stories", *STORY, "Back to top"]
    kept, dropped = template.apply(body)
    assert dropped == ("Home | News | Sports", "Back to top")
    assert kept == ["Most Popular Stories", *STORY]
    assert Template("x.example").apply(body) == (body, ())


def test_extraction_drops_the_learned_lines_and_says_which() -> None:
    """`extract` with the host's template: the learned lines leave the body (the dateline is then found in the
    story's first paragraph) and are listed in `Article.furniture`."""
    page = oldstyle(NEWSROOM["dam-spillway-evacuation"])
    generic = extract(page, "http://courier.example/news/dam.html")
    assert "Printer-friendly version" in generic.body.split("\n\n")
    lines = ["Printer-friendly version", "E-mail this story", "Back to top", "Most Popular Stories"]
    template = Template("courier.example", pages=5, blocks=dict(_learned(line) for line in lines))
    got = extract(page, "http://courier.example/news/dam.html", furniture=template)
    assert "Printer-friendly version" in got.furniture and set(got.furniture) <= set(lines)
    assert [p for p in generic.body.split("\n\n") if p not in got.furniture] == got.body.split("\n\n")
    assert generic.furniture == ()
