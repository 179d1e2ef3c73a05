"""Unit tests of the pure parts: fingerprint, record packing, compare and decide."""

from __future__ import annotations

from worker.dedup.decide import Thresholds, compare, decide
from worker.dedup.fingerprint import fingerprint, is_furniture, tokens
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


def test_short_additions_are_an_update_at_the_same_url_only() -> None:
    """Two restored short paragraphs (12 words) update the same page, but not a copy at another URL."""
    added = "Better Android support arrived in the patch.\n\nSeveral long standing bugs were fixed too."
    paras = TEXT.split("\n\n")
    grown = "\n\n".join(paras[:10] + [added] + paras[10:])
    stored = Story.of("s1", 1, "https://a.example/x", fingerprint(TEXT))
    fp = fingerprint(grown)
    same = decide("https://a.example/x", fp, "s1", None, [stored], Thresholds())
    other = decide("https://b.example/copy", fp, None, None, [stored], Thresholds())
    assert (same.event, same.kind, same.version) == ("update", "url", 2)
    assert (other.event, other.kind) == ("duplicate", "near")
