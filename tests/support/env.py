"""The environment of a wire process under test: the one builder every test that starts one uses."""

from __future__ import annotations

import os
from pathlib import Path


def wire_env(**settings: str | int | float | Path | None) -> dict[str, str]:
    """This process's environment without any `WIRE_` variable, plus `settings` as `WIRE_` variables.

    A developer's or CI's own `WIRE_` settings never leak into a process
    under test; what the test sets is all it gets. Keywords name the
    variable without its `WIRE_` (``redis_url=...`` is ``WIRE_REDIS_URL``)
    or in full (``**{"WIRE_MAX_ATTEMPTS": "0"}``, as a table of cases writes
    it); a value of None leaves the variable out.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("WIRE_")}
    for name, value in settings.items():
        if value is not None:
            env[name if name.startswith("WIRE_") else f"WIRE_{name.upper()}"] = str(value)
    return env
