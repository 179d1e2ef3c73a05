"""Text fingerprints (pure): normalised tokens, the content hash, 5-word shingle
hashes and the bottom-k sketch stored per story.

Normalisation makes typography invisible (HTML entities, NFKC, zero-width and
soft-hyphen characters, case, punctuation, paragraph separators), so two
bodies that differ only in quotes, dashes or spacing have the same
`content_hash` and the same shingles.

Each paragraph (line) also gets a 16-bit hash of its normalised words, in
text order: a story stores the first MAX_LINES of them, so a later copy's
line that the stored version lacks, however short, is known to be new, and
where it sits (between two lines the stored version has next to each other,
or not) is known too (decide._added_lines).

Shingle hashes are computed with numpy without a Python loop per token: the
tokens joined by spaces are hashed as one byte array (a polynomial prefix
sum, so each token's hash is a difference of two prefixes), then a
vectorised polynomial over each window of 5 token hashes and a 64-bit
finaliser. A 1,500-word article costs well under 0.1 ms here, where hashing
every shingle string in Python costs ~1.5 ms.
"""

from __future__ import annotations

import hashlib
import html
import re
import unicodedata
from dataclasses import dataclass
from functools import cached_property
from typing import NamedTuple

import numpy as np
import numpy.typing as npt

SHINGLE = 5  # words per shingle: long enough that unrelated news rarely share one
SKETCH = 128  # bottom-k sketch size stored per story (uint32 each: 512 bytes)

_WORD = re.compile(r"\w+", re.UNICODE)
_INVISIBLE = re.compile("[\u00ad\u200b\u200c\u200d\u2060\ufeff]")
_SENTENCE = re.compile(r"(?<=[.!?])\s+")
BLOCK_WORDS = 80  # paragraphs longer than this are cut into sentence runs
MAX_BLOCKS = 96  # block minima stored per story (4 bytes each)
MAX_LINES = 96  # line hashes stored per story (2 bytes each), the first ones
GLUE_WORDS = 4
PROSE_WORDS = 10  # a line of news is a sentence of at least this many words
_LIST_ITEM = re.compile(r"\s*(?:\d{1,3}[.)]|[•·▪►*-])\s")
FURNITURE_MAX_WORDS = 40
# Lines sites add around a wire story: credits, copyright, corrections and
# editor's notes, promotion. In a new version they are not material news.
_FURNITURE = re.compile(
    r"contributed to (?:this|the) report|\breporting by\b|\bediting by\b|\bwriting by\b|copyright|©"
    r"|all rights reserved|may not be (?:published|reproduced)|originally (?:published|appeared)"
    r"|republished|\beditor s note\b|\beditors note\b|^correction\b|^clarification\b|^update[ds]?\b"
    r"|earlier version of this|has been updated|\badvertisement\b|\bsign up\b|\bsubscribe\b|newsletter"
    r"|follow us|^read more\b|^related\b|^more on\b|^see also\b|click here|download the|\bthe app\b"
    r"|\bfollow (?:ap s|our) coverage\b|^with material from|^mit material|lesen sie auch|mehr zum thema"
    r"|^anzeige\b|hinweis der redaktion|anmerkung der redaktion|^korrektur\b|^avec afp\b"
)

U32 = npt.NDArray[np.uint32]


def normalise(text: str) -> str:
    """Entities decoded, NFKC, invisible characters dropped, case-folded."""
    return _INVISIBLE.sub("", unicodedata.normalize("NFKC", html.unescape(text))).casefold()


def tokens(text: str) -> list[str]:
    """Normalised word tokens (punctuation dropped)."""
    return _WORD.findall(normalise(text))


def blocks(text: str) -> list[list[str]]:
    """The normalised text as blocks of tokens: paragraphs, long ones cut at sentence ends.

    Blocks are the unit of "new material": an update inserts paragraphs,
    while copy-edits and typography only touch words inside old ones. Any
    newline separates paragraphs (sites disagree on blank lines); paragraphs
    over BLOCK_WORDS words are cut into sentence runs of about half that, so a
    body whose paragraph breaks were lost still yields comparable blocks.
    """
    return _split(text).blocks


def ends_sentence(para: str) -> bool:
    """The paragraph ends like a sentence: a full stop, question or exclamation mark, maybe inside quotes."""
    return para.rstrip().rstrip("\"'”’»)]").endswith((".", "!", "?", "…"))


def is_prose(para: str, toks: list[str]) -> bool:
    """A sentence of news, not a headline, a link row, a label or a list item: PROSE_WORDS words or more,
    ending like a sentence, not numbered or bulleted like an item of a list ("2. Google Stadia ...")."""
    return len(toks) >= PROSE_WORDS and ends_sentence(para) and not _LIST_ITEM.match(para)


class _Split(NamedTuple):
    blocks: list[list[str]]
    lines: list[list[str]]
    paras: list[str]  # each line's normalised text (punctuation kept)
    block_line: list[int]  # the line each block starts in


def _split(text: str) -> _Split:
    """`blocks(text)`, and the lines: each paragraph's tokens, whole and unglued (empty ones dropped),
    with its text and the line each block starts in (what `is_prose` reads, only when asked)."""
    out: list[list[str]] = []
    out_line: list[int] = []
    lines: list[list[str]] = []
    paras: list[str] = []
    # any newline ends a paragraph; a regex split on \s*\n\s* gives the same blocks, slower
    for para in normalise(text).split("\n"):
        toks = _WORD.findall(para)
        if not toks:
            continue
        line = len(lines)
        lines.append(toks)
        paras.append(para)
        if len(toks) <= BLOCK_WORDS:
            out.append(toks)
            out_line.append(line)
            continue
        cur: list[str] = []
        for sentence in _SENTENCE.split(para):
            cur.extend(_WORD.findall(sentence))
            if len(cur) >= BLOCK_WORDS // 2:
                out.append(cur)
                out_line.append(line)
                cur = []
        if cur:
            out.append(cur)
            out_line.append(line)
    blks, block_line = _glue(out, out_line)
    return _Split(blks, lines, paras, block_line)


def _glue(blks: list[list[str]], starts: list[int]) -> tuple[list[list[str]], list[int]]:
    """Glue blocks of fewer than GLUE_WORDS words (a lone "ADVERTISEMENT", a byline) to their predecessor."""
    out: list[list[str]] = []
    lines: list[int] = []
    for b, line in zip(blks, starts, strict=True):
        if out and len(b) < GLUE_WORDS:
            out[-1] = out[-1] + b
        else:
            out.append(list(b))
            lines.append(line)
    return out, lines


def is_furniture(block: list[str]) -> bool:
    """A short block that reads like page furniture or a credit/correction line, not news."""
    return len(block) <= FURNITURE_MAX_WORDS and bool(_FURNITURE.search(" ".join(block)))


def content_hash(toks: list[str], joined: bytes | None = None) -> str:
    """Hash of the normalised body: equal for bodies that differ only in typography."""
    raw = joined if joined is not None else " ".join(toks).encode("utf-8")
    return hashlib.blake2b(raw, digest_size=16).hexdigest()


def _mix64(x: npt.NDArray[np.uint64]) -> npt.NDArray[np.uint64]:
    # splitmix64 finaliser: spreads the polynomial's low-entropy bits over all 64
    x = x ^ (x >> np.uint64(30))
    x = x * np.uint64(0xBF58476D1CE4E5B9)
    x = x ^ (x >> np.uint64(27))
    x = x * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


_P = 0x100000001B3  # odd, so invertible modulo 2**64
_P_INV = pow(_P, -1, 2**64)


_POWERS: tuple[npt.NDArray[np.uint64], npt.NDArray[np.uint64]] = (np.ones(1, np.uint64), np.ones(1, np.uint64))


def _powers(n: int) -> tuple[npt.NDArray[np.uint64], npt.NDArray[np.uint64]]:
    """P**i and P**-i for i < n, computed once and grown by doubling (they were a third of token_ids)."""
    global _POWERS
    pw, inv = _POWERS
    if pw.size < n:
        size = max(n, 2 * pw.size, 1 << 14)
        with np.errstate(over="ignore"):
            pw = np.full(size, _P, dtype=np.uint64)
            pw[0] = 1
            pw = np.cumprod(pw, dtype=np.uint64)
            inv = np.full(size, _P_INV, dtype=np.uint64)
            inv[0] = 1
            inv = np.cumprod(inv, dtype=np.uint64)
        _POWERS = (pw, inv)
    return pw, inv


def token_ids(toks: list[str], joined: bytes | None = None) -> npt.NDArray[np.uint64]:
    """A 64-bit hash per token, vectorised: prefix sums of byte * P**i over the space-joined tokens.

    The hash of bytes [s, e) is (H[e] - H[s]) * P**-s, independent of where
    the token sits in the text. `joined` is `" ".join(toks).encode()` when
    the caller already has it.
    """
    if not toks:
        return np.zeros(0, dtype=np.uint64)
    return _tokens_and_lines(joined if joined is not None else " ".join(toks).encode("utf-8"), None)[0]


def _tokens_and_lines(
    raw: bytes, line_tokens: npt.NDArray[np.int32] | None
) -> tuple[npt.NDArray[np.uint64], npt.NDArray[np.uint16]]:
    """`token_ids` of the space-joined tokens `raw`, and a 16-bit hash per line, where line i is
    the next `line_tokens[i]` tokens: the same byte polynomial over the line's span, so it costs
    a few operations per line, not per token, and equal lines hash equally wherever they sit."""
    b = np.frombuffer(raw, dtype=np.uint8)
    n = b.size
    pw, inv = _powers(n + 1)
    with np.errstate(over="ignore"):
        prefix = np.zeros(n + 1, dtype=np.uint64)
        np.cumsum(b * pw[:n], dtype=np.uint64, out=prefix[1:])
        sp = np.flatnonzero(b == 32)
        starts = np.empty(sp.size + 1, dtype=np.intp)
        starts[0] = 0
        starts[1:] = sp + 1
        ends = np.empty(sp.size + 1, dtype=np.intp)
        ends[:-1] = sp
        ends[-1] = n
        ids = _mix64(((prefix[ends] - prefix[starts]) * inv[starts]) ^ (ends - starts).astype(np.uint64))
        if line_tokens is None or line_tokens.size == 0:
            return ids, np.zeros(0, dtype=np.uint16)
        last = np.cumsum(line_tokens, dtype=np.intp) - 1
        ls, le = starts[last - line_tokens + 1], ends[last]
        h = ((prefix[le] - prefix[ls]) * inv[ls]) ^ (le - ls).astype(np.uint64)
        # multiplicative hashing: the product's top 16 bits depend on every bit of h
        lines = ((h * np.uint64(0x9E3779B97F4A7C15)) >> np.uint64(48)).astype(np.uint16)
    return ids, lines


def positional_hashes(toks: list[str], k: int = SHINGLE, joined: bytes | None = None) -> U32:
    """32-bit hash of the k-word shingle starting at each position (one for texts shorter than k)."""
    if not toks:
        return np.zeros(0, dtype=np.uint32)
    return _shingles_of(token_ids(toks, joined), k)


def _shingles_of(ids: npt.NDArray[np.uint64], k: int = SHINGLE) -> U32:
    """`positional_hashes` from the token ids."""
    if ids.size == 0:
        return np.zeros(0, dtype=np.uint32)
    width = min(k, int(ids.size))
    n = int(ids.size) - width + 1
    acc = np.zeros(n, dtype=np.uint64)
    prime = np.uint64(_P)
    with np.errstate(over="ignore"):
        for j in range(width):
            acc = acc * prime + ids[j : j + n] + np.uint64(j + 1)
        mixed = _mix64(acc)
    return (mixed >> np.uint64(32)).astype(np.uint32)


def sorted_unique(x: U32) -> U32:
    """np.unique for a small array: numpy 2's hash-based unique costs ~25 us on 500 values, this ~5."""
    s = np.sort(x)
    if s.size < 2:
        return s
    keep = np.empty(s.size, dtype=np.bool_)
    keep[0] = True
    np.not_equal(s[1:], s[:-1], out=keep[1:])
    return s[keep]


def shingle_hashes(toks: list[str], k: int = SHINGLE) -> U32:
    """Sorted distinct 32-bit hashes of the k-word shingles."""
    return sorted_unique(positional_hashes(toks, k))


def sketch(hashes: U32, size: int = SKETCH) -> U32:
    """The bottom-`size` hashes: a uniform sample of the shingle set that supports containment estimates."""
    return hashes[:size]


@dataclass(frozen=True)
class Fingerprint:
    """Everything dedup derives from one body."""

    content_hash: str
    n_tokens: int
    hashes: U32  # all distinct shingle hashes, sorted
    positions: U32  # shingle hash at each start position, in text order
    pos_block: npt.NDArray[np.int32]  # block index of each start position
    block_words: npt.NDArray[np.int32]  # words per block
    blocks: tuple[list[str], ...]  # the normalised blocks (tokens), for the lazy furniture test
    lines: tuple[list[str], ...]  # each paragraph's tokens, whole (for the furniture test of added lines)
    line_hashes: npt.NDArray[np.uint16]  # a 16-bit hash of each line's words, in text order
    paras: tuple[str, ...]  # each line's normalised text, punctuation kept (for `is_prose`)
    block_line: npt.NDArray[np.intp]  # the line each block starts in

    @cached_property
    def line_prose(self) -> npt.NDArray[np.bool_]:
        """Each line reads as prose (`is_prose`), not a headline or a link row; only when novelty is asked."""
        return np.fromiter((is_prose(p, t) for p, t in zip(self.paras, self.lines, strict=True)), dtype=np.bool_,
                           count=len(self.lines))

    @cached_property
    def block_prose(self) -> npt.NDArray[np.bool_]:
        """Each block reads as prose: the line it starts in does."""
        return self.line_prose[self.block_line] if self.block_line.size else np.zeros(0, dtype=np.bool_)

    @cached_property
    def block_furniture(self) -> npt.NDArray[np.bool_]:
        """Block reads like furniture (credit, note, promotion); computed only when novelty is asked."""
        return np.fromiter((is_furniture(b) for b in self.blocks), dtype=np.bool_, count=len(self.blocks))

    @property
    def n_shingles(self) -> int:
        return int(self.hashes.size)

    def block_mins(self, limit: int = MAX_BLOCKS) -> U32:
        """Smallest shingle hash starting in each block; neighbours share one when over `limit` blocks."""
        nb = int(self.block_words.size)
        if self.positions.size == 0 or nb == 0:
            return np.zeros(0, dtype=np.uint32)
        group = self.pos_block if nb <= limit else (self.pos_block.astype(np.int64) * limit // nb)
        starts = np.flatnonzero(np.r_[True, group[1:] != group[:-1]])
        return np.minimum.reduceat(self.positions, starts).astype(np.uint32)


def fingerprint(body: str) -> Fingerprint:
    blks, lines, paras, block_line = _split(body)
    toks = [t for b in blks for t in b]
    words = np.fromiter((len(b) for b in blks), dtype=np.int32, count=len(blks))
    joined = " ".join(toks).encode("utf-8")
    lengths = np.fromiter((len(x) for x in lines), dtype=np.int32, count=len(lines))
    if toks:
        ids, line_hashes = _tokens_and_lines(joined, lengths)
    else:
        ids, line_hashes = np.zeros(0, dtype=np.uint64), np.zeros(0, dtype=np.uint16)
    pos = _shingles_of(ids)
    tok_block = np.repeat(np.arange(len(blks), dtype=np.int32), words)
    return Fingerprint(
        content_hash=content_hash(toks, joined),
        n_tokens=len(toks),
        hashes=sorted_unique(pos),
        positions=pos,
        pos_block=tok_block[: pos.size],
        block_words=words,
        blocks=tuple(blks),
        lines=tuple(lines),
        line_hashes=line_hashes,
        paras=tuple(paras),
        block_line=np.array(block_line, dtype=np.intp),
    )
