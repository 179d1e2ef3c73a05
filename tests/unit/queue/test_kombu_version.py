"""queue/broker.py overrides kombu's private methods: it runs only on the kombu it was tested with."""

from __future__ import annotations

import tomllib

import kombu
from packaging.requirements import Requirement
from packaging.version import Version

from tests.support.paths import ROOT
from worker.queue.broker import KOMBU_TESTED


def _minor(version: str) -> str:
    return ".".join(version.split(".")[:2])


def test_installed_kombu_is_a_version_the_transport_was_tested_with() -> None:
    """The installed kombu's minor version is one broker.py declares (KOMBU_TESTED)."""
    assert _minor(kombu.__version__) in KOMBU_TESTED, (
        f"kombu {kombu.__version__} is untried: run tests/integration/queue/test_broker.py and the Redis fault "
        f"tests against it, then add its minor version to KOMBU_TESTED and to pyproject's kombu pin")


def test_pyproject_pins_kombu_to_the_tested_minor_versions() -> None:
    """pyproject.toml's kombu requirement admits every tested minor version and nothing newer."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    (spec,) = [Requirement(d).specifier for d in project["dependencies"] if Requirement(d).name == "kombu"]
    for minor in KOMBU_TESTED:
        assert Version(f"{minor}.0") in spec and Version(f"{minor}.99") in spec
    newest = max(Version(m) for m in KOMBU_TESTED)
    assert Version(f"{newest.major}.{newest.minor + 1}.0") not in spec
    assert Version(f"{newest.major + 1}.0.0") not in spec
