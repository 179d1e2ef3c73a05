"""Unit tests of the pure parts: fingerprint, record packing, compare and decide."""

from __future__ import annotations

import struct
from dataclasses import replace

import numpy as np

from worker.dedup.decide import Thresholds, compare, decide, with_novelty
from worker.dedup.fingerprint import MAX_LINES, fingerprint, is_furniture, tokens
from worker.dedup.record import Story

TEXT = "\n\n".join(
    f"Paragraph {p}: the river rose {p} metres overnight in town number {p * 11}." for p in range(30)
)


def test_typography_does_not_change_the_content_hash() -> None:
    """Quotes, dashes, entities, case and paragraph separators do not change the normalised hash."""
    a = fingerprint('He said "yes" — then left.\n\nNext.')
    b = fingerprint("HE SAID &#8220;yes&#8221; -- then left. Next.")
    assert a.content_hash == b.content_hash


def test_tokens_drop_invisible_characters() -> None:
    """Zero-width spaces and soft hyphens inside words are removed."""
    assert tokens("wa\u200bter sup\u00adply") == ["water", "supply"]


def test_record_round_trips() -> None:
    """Story.pack/unpack preserve every field."""
    fp = fingerprint(TEXT)
    s = Story.of("0123456789abcdef", 3, "https://a.example/x", fp)
    back = Story.unpack("0123456789abcdef", s.pack())
    assert (back.version, back.url, back.content_hash, back.n_shingles) == (
        3,
        s.url,
        s.content_hash,
        s.n_shingles,
    )
    assert (back.sketch == s.sketch).all() and (back.block_mins == s.block_mins).all()
    assert back.line_hashes.size == 30 and (back.line_hashes == s.line_hashes).all()


def test_record_of_the_previous_format_unpacks_without_line_hashes() -> None:
    """A format-1 record (no line hashes), still in Redis within the window, unpacks with none."""
    fp = fingerprint(TEXT)
    url = b"https://a.example/x"
    mins, sk = fp.block_mins(), fp.hashes[:128]
    head = struct.pack(
        "<BIIIHH16s", 1, 2, fp.n_shingles, fp.n_tokens, len(url), mins.size, bytes.fromhex(fp.content_hash)
    )
    back = Story.unpack("s", head + url + mins.astype("<u4").tobytes() + sk.astype("<u4").tobytes())
    assert (back.version, back.url, back.line_hashes.size) == (2, "https://a.example/x", 0)
    assert (back.sketch == sk).all() and (back.block_mins == mins).all()


def test_line_hashes_ignore_typography_and_store_the_first_lines() -> None:
    """Each paragraph hashes by its normalised words (equal lines equal, wherever they sit); a story
    stores at most MAX_LINES of them."""
    fp = fingerprint('The “river” rose.\n\nFour bridges closed.\n\nThe "river" ROSE.')
    h = fp.line_hashes.tolist()
    assert len(h) == 3 and h[0] == h[2] != h[1]
    long = fingerprint("\n\n".join(f"Line {i} says {i * 7} things." for i in range(MAX_LINES + 20)))
    assert Story.of("s", 1, "u", long).line_hashes.size == MAX_LINES


def test_compare_identical_texts() -> None:
    """A text compared with itself has full containment and no novel words."""
    fp = fingerprint(TEXT)
    m = compare(fp, Story.of("s", 1, "u", fp))
    assert m.old_in_new == 1.0 and m.new_in_old == 1.0 and m.novel_words == 0


def test_furniture_lines_are_recognised() -> None:
    """Credit and promotion lines count as furniture, news sentences do not."""
    assert is_furniture(tokens("Associated Press writer Jane Doe contributed to this report."))
    assert not is_furniture(tokens("The river rose three metres overnight and closed two bridges."))


def test_decide_short_items_need_near_identity() -> None:
    """A one-line teaser contained in a stored story is not merged with it (short-item rule)."""
    story = fingerprint(TEXT)
    teaser = fingerprint("Paragraph 0: the river rose 0 metres overnight in town number 0.")
    d = decide("https://b.example/t", teaser, None, None, [Story.of("s", 1, "u", story)], Thresholds())
    assert d.event == "new"


def test_decide_new_without_candidates() -> None:
    """With nothing known the decision is `new`, version 1, similarity 0."""
    d = decide("https://a.example/x", fingerprint(TEXT), None, None, [], Thresholds())
    assert (d.event, d.version, d.similarity, d.kind) == ("new", 1, 0.0, None)


def test_one_short_paragraph_is_an_update_at_the_same_url_only() -> None:
    """One restored paragraph of 14 words updates the same page, but not a copy at another URL."""
    added = "Better Android support arrived in the patch, and several long standing bugs were fixed."
    paras = TEXT.split("\n\n")
    grown = "\n\n".join(paras[:10] + [added] + paras[10:])
    stored = Story.of("s1", 1, "https://a.example/x", fingerprint(TEXT))
    fp = fingerprint(grown)
    same = decide("https://a.example/x", fp, "s1", None, [stored], Thresholds())
    other = decide("https://b.example/copy", fp, None, None, [stored], Thresholds())
    assert (same.event, same.kind, same.version) == ("update", "url", 2)
    assert (other.event, other.kind) == ("duplicate", "near")


# short lines with no 5-word shingle of their own, as a recipe or a deals list grows
SHORT_LINES = ["USING HONEY INSTEAD OF SUGAR", "1 tsp nutmeg", "$674.00"]


def _near(body: str) -> tuple[str, int]:
    """The decision for `body` at another URL than the stored TEXT, and the lines it counts as added."""
    stored = Story.of("s1", 1, "https://a.example/x", fingerprint(TEXT))
    fp = fingerprint(body)
    d = decide("https://b.example/copy", fp, None, None, [stored], Thresholds())
    return d.event, with_novelty(compare(fp, stored), fp, Thresholds()).added_lines


def test_short_lines_inserted_inside_the_story_are_an_update() -> None:
    """Three short lines (8 words, no shingle of their own) inserted between kept paragraphs are news,
    at another URL too: the stored line hashes prove them new."""
    paras = TEXT.split("\n\n")
    grown = "\n\n".join(paras[:12] + SHORT_LINES[:2] + paras[12:20] + SHORT_LINES[2:] + paras[20:])
    assert _near(grown) == ("update", 3)
    stored = Story.of("s1", 1, "https://a.example/x", fingerprint(TEXT))
    same = decide("https://a.example/x", fingerprint(grown), "s1", None, [stored], Thresholds())
    assert same.event == "update" and same.rule.endswith("new words, 3 added lines")  # 8 words: < 10


def test_sentences_inserted_inside_the_story_at_another_url_are_an_update() -> None:
    """Two paragraphs of news inserted inside the story by another site carrying it are an update."""
    paras = TEXT.split("\n\n")
    news = ["Rescuers reached the last stranded families by boat late on Tuesday.",
            "The mayor said schools would stay closed until the water receded."]
    assert _near("\n\n".join(paras[:12] + news[:1] + paras[12:20] + news[1:] + paras[20:])) == ("update", 2)


def test_changed_moved_or_appended_short_lines_are_not_an_update() -> None:
    """Copy-edited lines replace old ones, lines before the first or after the last kept line may be a
    kicker or a trimmed copy's missing tail, and furniture and "___" separators say nothing."""
    paras = TEXT.split("\n\n")
    edited = list(paras)
    for i in (3, 9, 15):
        edited[i] = edited[i].replace("overnight", "over night")
    assert _near("\n\n".join(edited)) == ("duplicate", 0)
    assert _near("\n\n".join(SHORT_LINES + paras)) == ("duplicate", 0)
    assert _near("\n\n".join(paras + SHORT_LINES)) == ("duplicate", 0)
    furniture = ["ADVERTISEMENT", "___", "Sign up for our newsletter", "___"]
    assert _near("\n\n".join(paras[:12] + furniture + paras[12:])) == ("duplicate", 0)
    one = "\n\n".join(paras[:12] + SHORT_LINES[1:2] + paras[12:])
    assert _near(one)[0] == "duplicate"  # one line is not enough (update_lines = 2)


def test_the_full_text_after_a_copy_trimmed_above_its_sign_off_is_not_an_update() -> None:
    """A site that cuts a wire story's closing paragraphs keeps its sign-off; another site's full text then
    has those paragraphs right above the same sign-off: the same version, not news. At a URL fetched before
    (the page's own, or another of the story's pages that changed) the same paragraphs are an update."""
    paras = TEXT.split("\n\n")
    signoff = ["(Reporting by Desmond Thorsby; Editing by Dana Brennan)"]
    trimmed = "\n\n".join(paras[:24] + signoff)
    full = "\n\n".join(paras + signoff)
    stored = Story.of("s1", 1, "https://a.example/x", fingerprint(trimmed))
    other = decide("https://b.example/copy", fingerprint(full), None, None, [stored], Thresholds())
    assert other.event == "duplicate", other.rule
    same = decide("https://a.example/x", fingerprint(full), "s1", None, [stored], Thresholds())
    assert same.event == "update", same.rule
    # a page of the story fetched again because it changed, while the story's current version is another
    # site's trimmed copy: what its publisher added is news wherever it sits
    known = decide("https://b.example/copy", fingerprint(full), "s1", None, [stored], Thresholds())
    assert known.event == "update", known.rule


BACKGROUND = [
    "The franchise was rebooted in 2009 with a new cast playing the crew of the starship Enterprise.",
    "Its third film, released in 2016, earned less at the box office than either of the two before it.",
    "Producers had said a fourth film would reunite the cast with the actor who played the captain's father.",
    "Three scripts are still in contention, according to people familiar with the studio's plans.",
]


def test_a_story_sharing_background_but_not_its_opening_stays_apart() -> None:
    """A short story whose background paragraphs make 60% of another story's text, under an opening of its
    own, is another story; a copy whose opening was edited and a note put above it is still the same one."""
    first = ["Noah Hawley, best known for creating the television series Fargo, will direct the next film, the studio said.",
             "The most recent film came out three years ago and no release date has been set for the new one."]
    other = ["The Pentagon rejected accusations that its forces blocked aid to a desert camp near the Jordanian border.",
             "Independent analysts and sources inside the camp said the charges made by two ministries were false."]
    stored = Story.of("s1", 1, "https://a.example/x", fingerprint("\n\n".join(first + BACKGROUND)))
    negative = fingerprint("\n\n".join(other + BACKGROUND))
    assert decide("https://b.example/y", negative, None, None, [stored], Thresholds()).event == "new"
    edited = ["EDITOR'S NOTE: This story was updated to correct the studio's name.",
              "LOS ANGELES (AP) — Noah Hawley, best known for creating the series Fargo, will direct the next film, "
              "the studio said.", first[1].replace("three", "four")]
    copy = fingerprint("\n\n".join(edited + BACKGROUND[:2]))
    m = compare(copy, stored)
    assert m.jaccard < 0.5 and 0.6 <= max(m.old_in_new, m.new_in_old) < 0.72  # where the openings decide
    assert decide("https://c.example/z", copy, None, None, [stored], Thresholds()).event == "duplicate"


def test_the_line_rule_needs_stored_line_hashes() -> None:
    """A stored version without line hashes (a format-1 record) gives no line evidence."""
    paras = TEXT.split("\n\n")
    grown = fingerprint("\n\n".join(paras[:12] + SHORT_LINES[1:] + paras[12:]))  # 5 words, glued to a kept block
    s = Story.of("s1", 1, "https://a.example/x", fingerprint(TEXT))
    assert decide("https://a.example/x", grown, "s1", None, [s], Thresholds()).event == "update"
    old = replace(s, line_hashes=np.zeros(0, dtype=np.uint16))
    d = decide("https://a.example/x", grown, "s1", None, [old], Thresholds())
    assert d.event == "duplicate"


# ------------------------------------------------------------------ what one site shows around a story

HEADLINES = ["Council approves budget for library expansion after long debate",
             "High school robotics team heads to state finals",
             "Road work on Route 9 to close two lanes through spring",
             "Police seek witnesses after overnight break-in at hardware store",
             "Longtime diner owner retires after 41 years behind the counter",
             "Hospital opens new wing for cancer care",
             "Water main break floods downtown intersection"]
NAV = "Home | News | Sports | Business | Opinion | Classifieds | Obituaries | Subscribe to the print edition"


def _page(top: list[str], bottom: list[str], body: str = TEXT) -> str:
    return "\n\n".join([*top, body, *bottom])


def test_prose_is_a_sentence_not_a_headline_or_a_link_row() -> None:
    """Lines that end like a sentence and have ten words or more read as prose; headlines, link rows,
    labels, numbered list items and short lines do not."""
    fp = fingerprint("\n\n".join([NAV, HEADLINES[0], "Back to top", "Today: Sunny, high 38. Tonight: clear, low 22.",
                                  "2. Google Stadia Red Dead Redemption 2 doesn't run at a stable 60fps.",
                                  "The mayor said schools would stay closed until the water receded.",
                                  '"We are asking people to go now," the sheriff said.']))
    assert fp.line_prose.tolist() == [False, False, False, False, False, True, True]


def test_another_sites_furniture_around_the_story_is_no_update() -> None:
    """A copy with a navigation row and a sidebar of headlines (70 words the stored copy lacks, before and
    after the story) is a duplicate; two paragraphs of news inside the story make it an update, after its
    last paragraph they do not (the stored copy may have been cut short)."""
    assert _near(_page([NAV, "Most Popular Stories", *HEADLINES[:3]], [*HEADLINES[3:], "Back to top"]))[0] == \
        "duplicate"
    news = ["Rescuers reached the last stranded families by boat late on Tuesday, officials said.",
            "The mayor said schools would stay closed until the water receded from the lower town."]
    paras = TEXT.split("\n\n")
    assert _near("\n\n".join(paras[:5] + news + paras[5:]))[0] == "update"
    assert _near(_page([], news))[0] == "duplicate"


def test_a_sidebar_that_changes_between_fetches_of_a_page_is_no_update() -> None:
    """The publisher's own page fetched again with its sidebar of headlines changed, replaced or pushed
    along, is a duplicate; with two paragraphs of news added as well it is an update."""
    first = _page([NAV], ["Most Popular Stories", *HEADLINES[:4]])
    stored = Story.of("s1", 1, "https://a.example/x", fingerprint(first))

    def again(body: str) -> str:
        return decide("https://a.example/x", fingerprint(body), "s1", None, [stored], Thresholds()).event

    assert again(_page([NAV], ["Most Popular Stories", *HEADLINES[3:7]])) == "duplicate"  # replaced
    assert again(_page([NAV], ["Most Popular Stories", *HEADLINES[5:7], *HEADLINES[:2]])) == "duplicate"  # pushed
    paras = TEXT.split("\n\n")
    grown = "\n\n".join(paras[:5] + ["Rescuers reached the last stranded families by boat late on Tuesday.",
                                     "The mayor said schools would stay closed until the water receded."]
                        + paras[5:])
    assert again(_page([NAV], ["Most Popular Stories", *HEADLINES[3:7]], grown)) == "update"


def test_a_page_whose_story_is_known_from_another_site_counts_prose_only() -> None:
    """A page decided before as a copy of another site's story, fetched again: its own furniture (short lines
    the stored version never had) is no update, as at another URL; two paragraphs of news are."""
    stored = Story.of("s1", 2, "https://b.example/story", fingerprint(TEXT))
    url = "https://a.example/copy"
    furnished = _page([NAV, "Most Popular Stories", *HEADLINES[:3]], [*HEADLINES[3:]])
    assert decide(url, fingerprint(furnished), "s1", None, [stored], Thresholds()).event == "duplicate"
    paras = TEXT.split("\n\n")
    grown = "\n\n".join(paras[:5] + ["Rescuers reached the last stranded families by boat late on Tuesday.",
                                     "The mayor said schools would stay closed until the water receded."]
                        + paras[5:])
    d = decide(url, fingerprint(grown), "s1", None, [stored], Thresholds())
    assert (d.event, d.kind, d.version) == ("update", "url", 3)
