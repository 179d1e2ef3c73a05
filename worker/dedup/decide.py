"""The dedup decision (pure): a document's fingerprint against the known
stories the index returned -> `Decision`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, replace
from difflib import SequenceMatcher

import numpy as np
import numpy.typing as npt

from ..urls import url_key
from .fingerprint import U32, Fingerprint, is_furniture, sorted_unique
from .models import Decision
from .record import Story


@dataclass(frozen=True)
class Thresholds:
    """The knobs of `decide`; `Dedup(**thresholds)` overrides them by name."""

    same_containment: float = 0.6  # hard negatives share <= ~0.47 of the smaller text; copies >= 0.72
    same_jaccard: float = 0.5
    # below this containment, copies must also open alike (`_openings_agree`): copies sit at 0.72 and up
    sure_containment: float = 0.72
    opening_blocks: int = 2
    short_shingles: int = 30  # below this many shingles (~34 words) a text is "short"
    short_jaccard: float = 0.8  # short texts merge only when near-identical
    update_words: int = 20  # new non-furniture words that make a version material
    # the same page re-fetched: its publisher changed it, so less new text counts (restored
    # list items and short paragraphs of 2-7 words each; dupbench: 0.960 -> 0.987 of updates)
    update_words_same_url: int = 10
    # or this many non-furniture lines inserted between two lines the stored version has next to
    # each other: new however short ("1 tsp nutmeg", "$674.00"), and neither a copy-edit (which
    # replaces a line) nor a truncated copy's missing tail (which follows the last line)
    update_lines: int = 2


@dataclass(frozen=True)
class Match:
    """How a document compares with one stored story version."""

    story: Story
    jaccard: float
    old_in_new: float  # share of the stored version's shingles found in the document
    new_in_old: float  # share of the document's shingles found in the stored version
    new_shingles: float  # estimated number of the document's shingles the stored version lacks
    novel_words: int = 0  # words in the document's blocks that share nothing with the stored version
    novel_blocks: int = 0  # (these filled in by `with_novelty`, only for the matches that need them)
    added_lines: int = 0  # the document's non-furniture lines inserted inside the stored version
    novel_prose: int = 0  # of novel_words, those in blocks that read as prose (`fingerprint.is_prose`)
    tail_prose: int = 0  # of novel_prose, those after the last block the stored version has
    added_prose: int = 0  # of added_lines, those that read as prose
    churn: bool = False  # lines left as lines came: a changing list (headlines, links), not a story that grew


def member(x: U32, sorted_set: U32) -> npt.NDArray[np.bool_]:
    """x[i] in sorted_set (sorted, distinct): a binary search, cheaper than np.isin on small arrays."""
    if sorted_set.size == 0:
        return np.zeros(x.size, dtype=np.bool_)
    idx = np.searchsorted(sorted_set, x)
    idx[idx == sorted_set.size] = 0
    return np.asarray(sorted_set[idx] == x)


def with_novelty(m: Match, fp: Fingerprint, th: Thresholds, *, own_page: bool = False, same_url: bool = False,
                 ) -> Match:
    """`m` with its novel words, blocks and added lines (only the URL story and the best match need them);
    against the page's own stored version, whether its short lines churned (only when they would decide)."""
    # a trimmed copy's sign-off marks where its story text ends only against another URL's copy: a page
    # fetched again because it changed adds its publisher's paragraphs wherever they go
    signoff_ends = not (own_page or same_url)
    words, prose, tail, blks = _novelty(fp, m.story, signoff_ends)
    added, added_prose = _added_lines(fp, m.story, th.update_lines, signoff_ends=signoff_ends)
    m = replace(m, novel_words=words, novel_blocks=blks, added_lines=added, novel_prose=prose, tail_prose=tail,
                added_prose=added_prose)
    by_prose = prose >= th.update_words_same_url or added_prose >= th.update_lines
    by_all = words >= th.update_words_same_url or added >= th.update_lines
    if own_page and by_all and not by_prose:
        m = replace(m, churn=_churn(fp, m.story))
    return m


def _churn(fp: Fingerprint, story: Story) -> bool:
    """Short lines came as stored lines went, about as many: a list that changes (a sidebar of headlines,
    a ticker), not a story that grew.

    A story that grows keeps its lines: an update inserts paragraphs, and
    copy-edits replace a line here and there, one by one. A changing list
    has its lines replaced together by new ones that do not read as prose,
    or pushed out at one end as new ones come in at the other. So: at least
    two stored lines deleted or replaced in runs of two or more by lines
    that are not prose, and at least half as many as such lines that came.
    """
    a, b = story.line_hashes.tolist(), fp.line_hashes.tolist()
    if len(a) < 2:
        return False
    known = set(a)
    prose = fp.line_prose.tolist()
    came = sum(1 for h, p in zip(b, prose, strict=True) if not p and h not in known)
    if came < 2:
        return False
    gone = 0
    for op, i1, i2, j1, j2 in SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
        if op == "delete":
            gone += i2 - i1
        elif op == "replace" and i2 - i1 >= 2:
            gone += min(i2 - i1, sum(1 for j in range(j1, j2) if not prose[j]))
    return gone >= 2 and 2 * gone >= came


def compare(fp: Fingerprint, story: Story) -> Match:
    """Estimate overlap from the stored bottom-k sketch against the document's full shingle set.

    The sketch holds the k smallest hashes of the stored set A. Every element
    of A at or below the sketch's largest hash tau is in the sketch, so among
    the document's hashes <= tau (a uniform sample of B) membership in A is
    known exactly: that sample estimates |B∩A|/|B|, and the sketch itself
    estimates |A∩B|/|A|. When A has no more than k shingles both are exact.
    """
    return compare_all(fp, [story])[0]


def compare_all(fp: Fingerprint, stories: Sequence[Story]) -> list[Match]:
    """`compare` for each story, with one binary search over all their sketches together
    (the numpy calls per candidate, not the arithmetic, were most of the cost)."""
    n_b = fp.n_shingles
    plain = [s for s in stories if s.n_shingles and s.sketch.size] if n_b else []
    out: dict[str, Match] = {}
    if plain:
        sizes = np.fromiter((s.sketch.size for s in plain), dtype=np.intp, count=len(plain))
        starts = np.zeros(len(plain), dtype=np.intp)
        np.cumsum(sizes[:-1], out=starts[1:])
        shared = np.add.reduceat(member(np.concatenate([s.sketch for s in plain]), fp.hashes), starts)
        lasts = np.fromiter((s.sketch[-1] for s in plain), dtype=np.uint32, count=len(plain))
        samples = np.searchsorted(fp.hashes, lasts, side="right")
        for story, sh, sample in zip(plain, shared.tolist(), samples.tolist(), strict=True):
            out[story.story_id] = _match(story, n_b, sh, sample)
    return [out.get(s.story_id) or _empty_match(fp, s) for s in stories]


def _match(story: Story, n_b: int, shared: int, sample: int) -> Match:
    """The estimates from `shared` sketch hashes found in the document, of whose hashes `sample`
    lie at or below the sketch's largest."""
    n_a, size = story.n_shingles, story.sketch.size
    old_in_new = shared / size
    if size >= n_a:
        inter = float(shared)
        new_in_old = inter / n_b
    else:
        new_in_old = shared / sample if sample else 0.0
        inter = old_in_new * n_a
    inter = min(inter, float(n_a), float(n_b))
    union = n_a + n_b - inter
    return Match(
        story,
        jaccard=inter / union if union else 1.0,
        old_in_new=min(old_in_new, 1.0),
        new_in_old=min(new_in_old, 1.0),
        new_shingles=max(0.0, n_b * (1.0 - new_in_old)),
    )


def _empty_match(fp: Fingerprint, story: Story) -> Match:
    """Either side has no shingles: the same story only if the normalised texts are equal."""
    same = fp.content_hash == story.content_hash
    v = 1.0 if same else 0.0
    return Match(story, v, v, v, 0.0 if same else float(fp.n_shingles))


def _novelty(fp: Fingerprint, story: Story, signoff_ends: bool = True) -> tuple[int, int, int, int]:
    """Words (all, in prose blocks, and in prose blocks after the last block known to the stored version)
    and count of the document's blocks with no shingle known to be in the stored version.

    Known: the stored sketch (a sample of all its shingles) and each stored
    block's minimum. A copy-edited old paragraph keeps most shingles, so it
    almost surely still holds its block minimum or a sketch hash; an inserted
    paragraph holds neither.
    """
    nb = int(fp.block_words.size)
    if nb == 0 or fp.positions.size == 0:
        return 0, 0, 0, 0
    known = sorted_unique(np.concatenate((story.sketch, story.block_mins)))
    hit = member(fp.positions, known)
    old = np.bincount(fp.pos_block, weights=hit, minlength=nb) > 0
    # evidence: a hash inside the sketch's range that the stored version lacks
    # (the sketch holds every stored hash up to its largest)
    exhaustive = story.sketch.size >= story.n_shingles
    tau = np.uint32(0xFFFFFFFF) if exhaustive or story.sketch.size == 0 else story.sketch[-1]
    sampled = np.bincount(fp.pos_block, weights=fp.positions <= tau, minlength=nb) > 0
    novel = ~old
    # the furniture test is a regex per block: run it only on the blocks that could count as news
    for i in np.flatnonzero(novel):
        if is_furniture(fp.blocks[i]):
            novel[i] = False
    if not (novel & sampled).any():
        # no block is provably new: the difference may be paragraph breaks, not text
        return 0, 0, 0, 0
    prose = novel & fp.block_prose
    words = fp.block_words
    return (int(words[novel].sum()), int(words[prose].sum()), int(words[prose & _after_stored(fp, story, old, signoff_ends)].sum()),
            int(novel.sum()))


def _after_stored(fp: Fingerprint, story: Story, old: npt.NDArray[np.bool_], signoff_ends: bool = True,
                  ) -> npt.NDArray[np.bool_]:
    """The document's blocks after the last one it shares with the stored version: a block with a shingle
    the stored version has (`old`), or one starting in a line it has (exact, where the sketch only samples)."""
    known = old.copy()
    if story.line_hashes.size and fp.block_line.size:
        known |= np.isin(fp.line_hashes, story.line_hashes)[fp.block_line]
    at = np.flatnonzero(known)
    # a trimmed copy keeps its sign-off ("(Reporting by ...)", "... contributed to this report"): the last
    # paragraph it shares is the last one of story text, so the full text's closing paragraphs, above
    # that sign-off, are still after it
    last = len(at) - 1
    while signoff_ends and last >= 0 and is_furniture(fp.blocks[at[last]]):
        last -= 1
    return np.arange(known.size) > (at[last] if last >= 0 else -1)


def _added_lines(fp: Fingerprint, story: Story, at_least: int, *, signoff_ends: bool = True) -> tuple[int, int]:
    """The document's lines inserted between two lines that are adjacent in the stored version
    (furniture and separator lines such as "___" not counted), all and those that read as prose.

    Line hashes are exact where shingles are only sampled, and a line of
    one to four words has no 5-word shingle of its own, so only they can
    prove a short line new. But a copy-edit, a dateline or a typo makes a
    new line too, so a line counts only where the alignment of the two line
    sequences (longest matching runs) shows a pure insertion: the stored
    version's lines on both sides are kept and next to each other, none
    removed or changed in between. A line whose text the stored version has
    elsewhere counts too when the alignment inserts it (a restored section
    repeats its "[ Source ]" tag or its question). Lines added before the
    first or after the last kept line do not count: sites prepend kickers
    and notes, and a copy cut at the end (syndication trims) makes the full
    text look appended to. Only the stored version's first MAX_LINES lines
    are known, so insertions past them do not count either. With
    `signoff_ends` (another URL's copy), the stored version ends above its
    closing credits: a trimmed copy keeps "(Reporting by ...)" under the cut,
    so the full text's closing paragraphs land right above it. Returns 0
    early when the document cannot have `at_least` inserted lines.
    """
    if story.line_hashes.size < 2:
        return 0, 0
    a, b = story.line_hashes.tolist(), fp.line_hashes.tolist()
    known = set(a)
    # an inserted line is unknown to the stored version or repeats a line of the document
    if sum(h not in known for h in b) + len(b) - len(set(b)) < at_least:
        return 0, 0
    added = prose = 0
    opcodes = SequenceMatcher(None, a, b, autojunk=False).get_opcodes()
    end = _story_end(opcodes, fp, len(a)) if signoff_ends else len(a)
    for op, i1, _i2, j1, j2 in opcodes:
        # an insert opcode inside both sequences sits between two equal runs; one right above the
        # stored version's closing sign-off is a trimmed copy's missing tail, not an insertion
        if op == "insert" and 0 < i1 < end:
            news = [j for j in range(j1, j2) if _news_line(fp.lines[j])]
            added += len(news)
            prose += sum(1 for j in news if fp.line_prose[j])
    return added, prose


def _story_end(opcodes: Sequence[tuple[str, int, int, int, int]], fp: Fingerprint, stored: int) -> int:
    """Where the stored version's story text ends among its `stored` lines: before the closing run of
    lines the document has too and that are credits or notes (`fingerprint.is_furniture`)."""
    end = stored
    for op, i1, i2, j1, j2 in reversed(opcodes):
        if op == "insert":
            continue
        if op != "equal" or i2 != end or not all(is_furniture(fp.lines[j]) for j in range(j1, j2)):
            break
        end = i1
    return end


def _news_line(line: list[str]) -> bool:
    """Not furniture, and not a separator ("___" is a \\w+ token but says nothing)."""
    return any(t.strip("_") for t in line) and not is_furniture(line)


def url_identity(url: str) -> str:
    """The URL identity dedup keys on: `urls.url_key` (www., scheme, AMP, slash folded)."""
    try:
        return url_key(url)
    except Exception:  # a URL the canonicaliser rejects still deserves a stable identity
        return url.strip()


def new_story_id(url: str, content_hash: str) -> str:
    """Deterministic, so a retried or redelivered submission proposes the same id."""
    return hashlib.blake2b(f"{url}\x00{content_hash}".encode(), digest_size=8).hexdigest()


def decide(
    url: str,
    fp: Fingerprint,
    url_story_id: str | None,
    hash_story_id: str | None,
    stories: Sequence[Story],
    th: Thresholds,
) -> Decision:
    """Same URL, then same normalised text, then the best near match; else new. See `engine` for the rules."""
    by_id = {s.story_id: s for s in stories}
    url_story = by_id.get(url_story_id) if url_story_id else None
    if url_story is not None:
        if hash_story_id == url_story.story_id or url_story.content_hash == fp.content_hash:
            return _dup(url_story, "url", 1.0, "same url, same text", fp)
        # the story's current version may be another site's copy: then this page's own furniture
        # is no more news than another site's would be
        own = url_identity(url_story.url) == url_identity(url)
        m = with_novelty(compare(fp, url_story), fp, th, own_page=own, same_url=True)
        sim = similarity(m)
        if material(m, th, same_url=True, own_page=own):
            return _update(m, "url", f"same url, {_news(m)}", fp)
        if same_story(m, fp, th):
            return _dup(url_story, "url", sim, "same url, no material change", fp)
        return _update(m, "url", f"same url, text replaced (similarity {sim:.2f})", fp)
    hash_story = by_id.get(hash_story_id) if hash_story_id else None
    if hash_story is not None:
        return _dup(hash_story, "exact", 1.0, "same normalised text", fp)
    matches = [m for m in compare_all(fp, stories) if same_story(m, fp, th) and _openings_agree(m, fp, th)]
    if matches:
        best = max(matches, key=lambda m: (similarity(m), m.story.version, m.story.story_id))
        best = with_novelty(best, fp, th)
        sim = similarity(best)
        short = min(best.story.n_shingles, fp.n_shingles) < th.short_shingles
        why = f"jaccard {best.jaccard:.2f}" if short else f"containment {sim:.2f}"
        if material(best, th):
            return _update(best, "near", f"near ({why}), {_news(best)}", fp)
        return _dup(best.story, "near", sim, f"near ({why})", fp)
    return Decision(
        "new", new_story_id(url, fp.content_hash), 1, None, 0.0, None, "no match", fp.content_hash
    )


def similarity(m: Match) -> float:
    """The reported similarity: the larger containment (the shorter text inside the longer), or Jaccard."""
    return max(m.jaccard, min(m.old_in_new, 1.0) if m.story.n_shingles else 0.0, m.new_in_old)


def same_story(m: Match, fp: Fingerprint, th: Thresholds) -> bool:
    """Near duplicate: most of one text is inside the other. Short texts need near-identity."""
    if min(m.story.n_shingles, fp.n_shingles) < th.short_shingles:
        return m.jaccard >= th.short_jaccard
    return m.jaccard >= th.same_jaccard or max(m.old_in_new, m.new_in_old) >= th.same_containment


def _openings_agree(m: Match, fp: Fingerprint, th: Thresholds) -> bool:
    """Copies of one story open alike; a story that only shares background paragraphs does not.

    At `sure_containment` and above (copies, trimmed or grown, sit at 0.72
    and up) the texts are one story whatever their openings. Below it (hard
    negatives reach 0.6 when a short story's background is half of
    another's), the openings must meet: the smallest shingle of one of the
    stored version's first `opening_blocks` blocks starts in one of the
    document's first `opening_blocks` + 1 (a site may put a note above the
    lede), or one of the first `opening_blocks` lines is the same. The
    smallest shingle survives most copy-edits of a lede; the line survives
    a lede cut to a single sentence. A stored version without blocks gives
    no evidence and is not held back.
    """
    if m.jaccard >= th.same_jaccard or max(m.old_in_new, m.new_in_old) >= th.sure_containment:
        return True
    n = th.opening_blocks
    if m.story.block_mins.size == 0:
        return True
    opening = fp.positions[fp.pos_block <= n]
    if np.isin(m.story.block_mins[:n], opening).any():
        return True
    lines = m.story.line_hashes[:n]
    return bool(lines.size and np.isin(fp.line_hashes[:n], lines).any())


def material(m: Match, th: Thresholds, *, same_url: bool = False, own_page: bool = False) -> bool:
    """The document adds news to the stored version: enough words in provably new, non-furniture
    blocks, or enough non-furniture lines inserted inside it.

    What counts is the story's text. Against another site's copy only words
    of prose count: what one site shows around a wire story and another
    does not (headline lists, link rows, labels, bylines) is short and does
    not end like a sentence, while a wire update adds paragraphs of news.
    Nor do words after the stored copy's last paragraph: a copy cut short
    (syndication trims) makes the full text look grown. Lines inserted
    inside the story count whatever their form. Against the page's own
    stored version (`own_page`) short lines count too (restored list items,
    "1 tsp nutmeg"), unless lines left as they came (`_churn`): a sidebar of
    headlines that changes on every fetch. A page fetched again whose
    story's current version is another site's copy (`same_url`, not
    `own_page`) needs fewer words of prose than another URL.
    """
    words = th.update_words_same_url if same_url or own_page else th.update_words
    if own_page and not m.churn:
        return m.novel_words >= words or m.added_lines >= th.update_lines
    if own_page:
        return m.novel_prose >= words or m.added_prose >= th.update_lines
    return m.novel_prose - m.tail_prose >= words or m.added_lines >= th.update_lines


def _news(m: Match) -> str:
    """What a material document adds, for the decision's rule text."""
    return f"{m.novel_words} new words" + (f", {m.added_lines} added lines" if m.added_lines else "")


def _update(m: Match, kind: str, rule: str, fp: Fingerprint) -> Decision:
    s = m.story
    return Decision("update", s.story_id, s.version + 1, kind, similarity(m), s.url, rule, fp.content_hash)


def _dup(story: Story, kind: str, sim: float, rule: str, fp: Fingerprint) -> Decision:
    return Decision("duplicate", story.story_id, story.version, kind, sim, story.url, rule, fp.content_hash)
