"""Golden pages: each tests/fixtures/extract/NAME.html must extract to NAME.json exactly."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

# The regen script is the single definition of "expected": load it by path
# (tests/ is not a package).
_spec = importlib.util.spec_from_file_location("regen_extract_golden", Path(__file__).with_name("regen_extract_golden.py"))
assert _spec and _spec.loader
_regen = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_regen)
FIXTURES: Path = _regen.FIXTURES
expected = _regen.expected

NAMES = sorted(p.stem for p in FIXTURES.glob("*.html"))
SEED_SOURCE = next((p / "shared" for p in Path(__file__).resolve().parents if (p / "shared" / "corpus").is_dir()), Path("/nonexistent")) / "corpus" / "seed" / "republished-ap-story.txt"


@pytest.mark.parametrize("name", NAMES)
def test_golden_page_matches_expected_json(name: str) -> None:
    """Extraction of each golden page equals its committed expected JSON."""
    want = json.loads((FIXTURES / f"{name}.json").read_text(encoding="utf-8"))
    assert expected(name) == want


def test_at_least_six_site_themes() -> None:
    """The seed-shaped page plus at least five other site themes are covered."""
    assert "seed_wordpress_ap" in NAMES and len(NAMES) >= 6


def test_seed_page_title_agency_dateline() -> None:
    """The seed page yields the exact headline, agency AP and dateline KABUL, Afghanistan."""
    got = expected("seed_wordpress_ap")
    assert got["title"] == "Taliban wins close consulates; Tajikistan reinforces border"
    assert got["agency"] == "AP"
    assert got["dateline"] == "KABUL, Afghanistan"
    assert got["authors"] == []


def test_seed_page_body_is_story_only() -> None:
    """The seed body runs from the dateline paragraph to the contributor line, with no furniture."""
    body = str(expected("seed_wordpress_ap")["body"])
    assert body.startswith("KABUL, Afghanistan (AP) — A surge of Taliban wins")
    assert body.endswith("Tameem Akhgar in Kabul, Afghanistan contributed to this report.")
    for furniture in (
        "Wakil Kohsar", "+ posts", "Leave a Reply", "Your email address", "Previous Story", "Next Story",
        "9 arrested over alleged plot", "Parts of missing Russian plane", "Latest from Asia", "Privacy Policy",
    ):
        assert furniture not in body


def test_seed_page_body_equals_seed_text() -> None:
    """The seed body equals the paragraphs of the shared seed story (when ../shared is present)."""
    if not SEED_SOURCE.exists():
        pytest.skip("shared seed corpus not available")
    text = SEED_SOURCE.read_text(encoding="utf-8")
    start = text.index("KABUL, Afghanistan (AP)")
    end = text.index("contributed to this report.") + len("contributed to this report.")
    # Non-breaking spaces become plain spaces in our bodies (whitespace is normalised).
    want = "\n\n".join(" ".join(p.split()) for p in text[start:end].split("\n") if p.strip())
    assert expected("seed_wordpress_ap")["body"] == want
