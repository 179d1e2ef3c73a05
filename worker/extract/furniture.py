"""Site furniture learned from the site itself (pure: no Redis, no clock).

A line that recurs on the pages of one host, under different stories, is
the host's furniture whatever its template: a navigation row, a "Most
Popular Stories" list, "Printer-friendly version | E-mail this story", a
"Subscribe to ... for unlimited access." line. The process stage keeps, per
host, what it saw of each line (`BlockStats`, stored by
`pipeline.furniture`) and hands extraction the host's `Template`, which
drops the lines it has learned.

What keeps it honest:

- **Different stories.** A line counts once per story it was seen with,
  the story being the one dedup decided the page is (its `story_id`): the
  same AP story at two URLs of one host, or re-fetched as it is updated,
  is one story, so its own paragraphs never become furniture.
- **Most of the host's pages.** A line must also be on a good share of
  the host's pages since it first appeared (a background paragraph that
  three stories of a running topic share is on a small share of them).
- **Prose is held to more.** A full sentence of 15 words or more needs
  more stories and a larger share than a short or unpunctuated line
  (headlines, link rows, credits), and a long paragraph inside the story
  (not among its first 3 or last 6 lines) is never recorded at all: that
  is where a story's own text lives.
- **Cold start.** Until a line has been seen on `MIN_STORIES` stories the
  host's pages go through the generic path unchanged.

Lines are compared on their words, case-folded, with every run of digits
as one digit: "Comments (12)" and "Comments (3)" are one line.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

KEY_BYTES = 8  # a line's key: 8 bytes of blake2b over its normalised words
SNIPPET_BYTES = 32  # the start of a line kept beside its counts, for `wire furniture show`
MAX_SIGHTINGS = 64  # lines recorded per page: the first and the last half of them
# inside the story, paragraphs this long that read as prose are never recorded
LONG_PROSE_WORDS = 25
EDGE_HEAD, EDGE_TAIL = 3, 6  # the story's first and last lines: where furniture sits, recorded whatever their length

# A line is furniture when it was seen with at least this many stories, on at least this share of the
# host's pages since it first appeared. Prose (a sentence of PROSE_WORDS words or more) needs more.
MIN_STORIES = 3
MIN_SHARE = 0.3
PROSE_WORDS = 15
PROSE_MIN_STORIES = 4
PROSE_MIN_SHARE = 0.6

CACHED_LINES, CACHED_LINE_CHARS = 2048, 1000  # `line_info`'s cache: lines, and the longest line kept
_LINES: dict[str, tuple[bytes | None, int]] = {}
_WORD = re.compile(r"\w+")
_DIGITS = re.compile(r"\d+")
# ends like a sentence: a full stop, question or exclamation mark, maybe inside quotes or brackets
_SENTENCE_END = re.compile(r"[.!?…][\"'”’»)\]]*\s*$")


def words(line: str) -> list[str]:
    """The line's words as furniture compares them: case-folded, each run of digits as "0"."""
    return _WORD.findall(_DIGITS.sub("0", line.casefold()))


def line_info(line: str) -> tuple[bytes | None, int]:
    """A line's key and word count. Extraction looks a page's lines up in the template, then the process
    stage counts the same lines, and furniture recurs across pages: each short line is worked out once
    (the text is the cache key; long lines are not kept, so the cache stays a few MB at most)."""
    got = _LINES.get(line)
    if got is None:
        toks = words(line)
        got = (hashlib.blake2b(" ".join(toks).encode("utf-8"), digest_size=KEY_BYTES).digest(), len(toks)) \
            if toks else (None, 0)
        if len(line) <= CACHED_LINE_CHARS:
            if len(_LINES) >= CACHED_LINES:
                _LINES.clear()
            _LINES[line] = got
    return got


def forget_lines() -> None:
    """Empty the cache of `line_info` (benchmarks: the cost of lines never seen)."""
    _LINES.clear()


def block_key(line: str) -> bytes | None:
    """The key a line is counted under (None for a line without words)."""
    return line_info(line)[0]


def is_prose(line: str, min_words: int = PROSE_WORDS) -> bool:
    """A sentence of `min_words` words or more, ending like one."""
    return bool(_SENTENCE_END.search(line)) and line_info(line)[1] >= min_words


def snippet(line: str) -> bytes:
    """The start of a line, at most SNIPPET_BYTES of UTF-8, cut between characters."""
    raw = " ".join(line.split()).encode("utf-8")[:SNIPPET_BYTES]
    return raw.decode("utf-8", "ignore").encode("utf-8")


def sightings(kept: Sequence[str], dropped: Sequence[str] = ()) -> list[tuple[bytes, bytes]]:
    """(key, snippet) of the lines of one page to count: every line dropped as furniture (so the
    template keeps seeing what it drops), and the kept lines but long prose inside the story.
    At most MAX_SIGHTINGS, taken from both ends; each key once."""
    candidates = list(dropped)
    last = len(kept) - EDGE_TAIL
    for i, line in enumerate(kept):
        if EDGE_HEAD <= i < last and is_prose(line, LONG_PROSE_WORDS):
            continue
        candidates.append(line)
    if len(candidates) > MAX_SIGHTINGS:
        half = MAX_SIGHTINGS // 2
        candidates = candidates[:half] + candidates[-half:]
    out: dict[bytes, str] = {}
    for line in candidates:
        key = line_info(line)[0]
        if key is not None and key not in out:
            out[key] = line
    return [(key, snippet(line)) for key, line in out.items()]


@dataclass(frozen=True)
class BlockStats:
    """What a host's table holds about one line."""

    stories: int  # distinct stories it was seen with (saturating)
    hits: int  # pages of the host it was seen on
    first: int  # the host's page number when it was first seen
    last: int  # ... and when it was last seen
    minute: int  # when it was last seen (unix minutes)
    text: str = ""  # the start of the line

    def share(self, pages: int) -> float:
        """Share of the host's pages since this line first appeared that carried it."""
        return self.hits / max(1, pages - self.first + 1)

    def learned(self, pages: int, prose: bool = False) -> bool:
        """Furniture, for a line of this form (prose needs more stories and a larger share)."""
        if prose:
            return self.stories >= PROSE_MIN_STORIES and self.share(pages) >= PROSE_MIN_SHARE
        return self.stories >= MIN_STORIES and self.share(pages) >= MIN_SHARE


@dataclass(frozen=True)
class Template:
    """A host's learned furniture: its page count and the lines it keeps counts of."""

    host: str
    pages: int = 0
    blocks: Mapping[bytes, BlockStats] = field(default_factory=dict)

    @classmethod
    def of_lines(cls, lines: Iterable[str], host: str = "") -> Template:
        """A template that drops these lines, for a caller that knows a site's furniture already."""
        keys = (block_key(line) for line in lines)
        stats = BlockStats(PROSE_MIN_STORIES, 1, 1, 1, 0)
        return cls(host, pages=1, blocks={k: stats for k in keys if k is not None})

    def __bool__(self) -> bool:
        return bool(self.blocks)

    def is_furniture(self, line: str) -> bool:
        key = block_key(line)
        stats = self.blocks.get(key) if key is not None else None
        return stats is not None and stats.learned(self.pages, is_prose(line))

    def apply(self, paragraphs: Sequence[str]) -> tuple[list[str], tuple[str, ...]]:
        """(the paragraphs that are not furniture, the ones that are), in page order."""
        if not self.blocks:
            return list(paragraphs), ()
        kept: list[str] = []
        dropped: list[str] = []
        for para in paragraphs:
            (dropped if self.is_furniture(para) else kept).append(para)
        return kept, tuple(dropped)
