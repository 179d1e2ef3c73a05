"""Characters that are not text: invisible marks and mis-decoded bytes, removed from what we output.

- Zero-width spaces, word joiners and byte-order marks (U+200B, U+2060,
  U+FEFF) are invisible and split words: "RO\u200bME" is no dateline and
  "Associ\u200bated" no agency. They go everywhere.
- Soft hyphens (U+00AD) are hyphenation hints publishers place on purpose:
  they stay in the body, and go where we match names and datelines.
- Zero-width (non-)joiners (U+200C, U+200D) shape Persian, Indic and emoji
  text; they go only next to Latin letters or ASCII, where they shape nothing.
- Mojibake (UTF-8 read as cp1252 somewhere upstream: "â€”" for "—",
  "CafÃ©" for "Café") is repaired by ftfy, the maintained library for it,
  which tells mojibake from real text by how bad each reading looks. Its cost
  (~0.2 ms per kB) is paid only by lines showing the byte patterns it leaves.
  A mis-read dash whose last character was then straightened ('â€"') is
  beyond ftfy: it becomes an em dash.
"""

from __future__ import annotations

import re

from ftfy import fix_encoding

_C1 = re.compile("[\x80-\x9f]")
_INVISIBLE = re.compile("[\u200b\u2060\ufeff]")
_LATIN = "\u0000-\u007f\u00c0-\u024f"
_JOINER = re.compile(f"(?<=[{_LATIN}])[\u200c\u200d]+|[\u200c\u200d]+(?=[{_LATIN}])")
# What UTF-8 bytes look like when read as cp1252 or latin-1: a lead byte
# (Â Ã Ä Å ... or â for the three-byte punctuation) followed by a
# continuation byte shown as a symbol or a C1 stand-in.
_MOJIBAKE = re.compile(
    "[\u00c2-\u00df][\u0080-\u00bf\u0152\u0153\u0160\u0161\u0178\u017d\u017e\u0192\u02c6\u02dc"
    "\u2013\u2014\u2018-\u201e\u2020-\u2022\u2026\u2030\u2039\u203a\u20ac\u2122]|\u00e2\u20ac"
)


# "â€" then a straight quote: a dash read as cp1252 ("â€”", whose last character reads as a curly quote)
# that something upstream then straightened; ftfy cannot tell which dash, and an em dash is the usual one
_STRAIGHTENED_DASH = re.compile('\u00e2\u20ac"')


def clean_inline(text: str) -> str:
    """`text` without invisible characters, with mis-decoded characters repaired."""
    if _MOJIBAKE.search(text):
        text = _STRAIGHTENED_DASH.sub("—", _C1.sub("", fix_encoding(text)))
    text = _INVISIBLE.sub("", text)
    return _JOINER.sub("", text) if "\u200c" in text or "\u200d" in text else text


def matchable(text: str) -> str:
    """`clean_inline`, soft hyphens removed too: the form names and datelines are matched in."""
    return clean_inline(text).replace("\u00ad", "")
