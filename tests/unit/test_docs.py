"""The documentation points at things that exist: tests it names, files it links, and stays short."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.support.paths import ROOT

DOCS = [ROOT / "README.md", ROOT / "CHANGELOG.md", *sorted((ROOT / "docs").rglob("*.md"))]
TEST_REF = re.compile(r"(tests/[\w/]+\.py)(?:::(\w+))?")
CODE_REF = re.compile(r"\bworker/[\w/]+\.(?:py|lua)\b")
LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")


def _name(doc: Path) -> str:
    return str(doc.relative_to(ROOT))


@pytest.mark.parametrize("doc", DOCS, ids=_name)
def test_every_named_test_exists(doc: Path) -> None:
    """Each `tests/...py::test_name` a document cites is a file holding that test (so a guarantee's row
    never points at a test that moved or was renamed)."""
    missing = []
    for path, name in TEST_REF.findall(doc.read_text(encoding="utf-8")):
        target = ROOT / path
        if not target.is_file():
            missing.append(path)
        elif name and not re.search(rf"^(?:async )?def {name}\b", target.read_text(encoding="utf-8"), re.M):
            missing.append(f"{path}::{name}")
    assert not missing, f"{_name(doc)} cites tests that do not exist: {missing}"


@pytest.mark.parametrize("doc", [d for d in DOCS if d.name != "CHANGELOG.md"], ids=_name)
def test_every_named_module_exists(doc: Path) -> None:
    """Each `worker/...py` path a document names exists (the changelog may name what was moved away)."""
    missing = sorted({p for p in CODE_REF.findall(doc.read_text(encoding="utf-8")) if not (ROOT / p).exists()})
    assert not missing, f"{_name(doc)} names modules that do not exist: {missing}"


@pytest.mark.parametrize("doc", DOCS, ids=_name)
def test_every_relative_link_resolves(doc: Path) -> None:
    """Each relative link of a document leads to a file or folder of the repository: nothing outside it."""
    broken = []
    for target in LINK.findall(doc.read_text(encoding="utf-8")):
        if re.match(r"[a-z]+:", target):
            continue  # http(s), mailto: not ours to check offline
        resolved = (doc.parent / target).resolve()
        if not resolved.exists() or ROOT not in resolved.parents:
            broken.append(target)
    assert not broken, f"{_name(doc)} links to what is not in the repository: {broken}"


def test_readme_stays_user_documentation_sized() -> None:
    """The README is what a user reads first: at most 400 lines, design notes live in docs/."""
    assert len((ROOT / "README.md").read_text(encoding="utf-8").splitlines()) <= 400
