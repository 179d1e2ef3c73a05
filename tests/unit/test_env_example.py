"""`config/wire.env.example` documents every variable wire reads, each with its true default."""

from __future__ import annotations

import re

from tests.support.compose import env_line
from tests.support.paths import ROOT
from worker.settings import Settings

EXAMPLE = ROOT / "config" / "wire.env.example"
# Variables wire sets for its own processes: no operator sets them.
INTERNAL = {"WIRE_RUN_PID"}  # `wire run`'s pid, for the children that must not outlive it


def example_lines() -> list[tuple[str, str, bool]]:
    """(variable, value, commented) for each `WIRE_X=value` line of the example, `#WIRE_X=value` included."""
    out = []
    for line in EXAMPLE.read_text(encoding="utf-8").splitlines():
        commented = line.startswith("#WIRE_")
        pair = env_line(line[1:] if commented else line)
        if pair and pair[0].startswith("WIRE_"):
            out.append((pair[0], pair[1], commented))
    return out


def variables_read() -> set[str]:
    """Every WIRE_ variable named anywhere in wire's code (settings, the ops commands, error messages),
    less the INTERNAL ones."""
    names = set()
    for path in (ROOT / "worker").rglob("*.py"):
        names |= set(re.findall(r"\bWIRE_[A-Z][A-Z0-9_]*[A-Z0-9]\b", path.read_text(encoding="utf-8")))
    assert names >= INTERNAL, f"INTERNAL names variables wire no longer sets: {INTERNAL - names}"
    return names - INTERNAL


def test_example_has_one_line_for_each_variable_wire_reads() -> None:
    """A variable added to the code without a line in the example fails here, and so does a stale line."""
    names = [name for name, _, _ in example_lines()]
    assert len(names) == len(set(names)), f"listed twice: {sorted({n for n in names if names.count(n) > 1})}"
    assert set(names) == variables_read(), (
        f"missing from the example: {sorted(variables_read() - set(names))}; "
        f"not read by wire: {sorted(set(names) - variables_read())}")


def test_each_commented_line_holds_the_default() -> None:
    """Uncommenting a line as it stands changes nothing: its value is what wire uses when it is unset."""
    default = Settings.from_env({})
    wrong = {name: value for name, value, commented in example_lines()
             if commented and Settings.from_env({name: value}) != default}
    assert not wrong, f"commented lines whose value is not the default (write the example in the comment): {wrong}"

