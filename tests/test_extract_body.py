"""Main-text choices that need real pages: the thorough mode as a second opinion (skipped without ../shared)."""

from __future__ import annotations

import gzip
import json
import re
from collections import Counter
from pathlib import Path

import pytest

from worker.extract import extract

SHARED = next((p / "shared" for p in Path(__file__).resolve().parents if (p / "shared" / "corpus").is_dir()), None)


def _shingles(text: str) -> list[tuple[str, ...]]:
    """The benchmark's unit: windows of four words."""
    words = re.findall(r"\w+", text)
    return [tuple(words[i:i + 4]) for i in range(len(words) - 3)]


def _page(bench: str, page_id: str) -> tuple[bytes, dict[str, str]]:
    if SHARED is None:
        pytest.skip("shared extraction corpus not available")
    folder = SHARED / "corpus" / "extraction" / bench
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
