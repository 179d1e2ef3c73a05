"""Which malloc the worker processes run on: jemalloc when it is installed, else glibc's.

lxml builds and frees a tree for every page, and jemalloc serves that
pattern better than glibc's malloc: extraction alone ran 4-27% faster under
it in four alternating pairs of passes, and the whole pipeline was faster
in five of seven interleaved benchmark pairs (docs/design/allocator.md).
The Docker image preloads
jemalloc with `LD_PRELOAD`; `wire run` does the same for the processes it
starts (an allocator can only be chosen before a process starts), and every
worker logs the allocator it runs on.

`WIRE_MALLOC`: `auto` (the default) preloads jemalloc when it is found and
falls back to glibc's; `jemalloc` requires it; `system` leaves glibc's.
"""

from __future__ import annotations

import glob
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from ..errors import ConfigError
from ..settings import parse_malloc_mode

# Debian/Ubuntu's libjemalloc2 (per architecture), the image's link, other distributions
CANDIDATES = ("/usr/lib/*-linux-gnu/libjemalloc.so.2", "/usr/local/lib/libjemalloc.so.2", "/usr/lib/libjemalloc.so.2",
              "/usr/lib64/libjemalloc.so.2")
INSTALL_HINT = "apt-get install libjemalloc2"


def find_jemalloc(candidates: Iterable[str] = CANDIDATES) -> str | None:
    """The first installed jemalloc shared library among `candidates` (glob patterns), or None."""
    for pattern in candidates:
        for path in sorted(glob.glob(pattern)):
            if Path(path).is_file():
                return path
    return None


@dataclass(frozen=True)
class Choice:
    env: dict[str, str]  # the variables to add to a child's environment (LD_PRELOAD, or nothing)
    allocator: str  # "jemalloc" or "glibc malloc"
    detail: str  # one line for the operator: what was chosen and why


def choose(mode: str, environ: Mapping[str, str], *, library: str | None) -> Choice:
    """The allocator for processes started with `environ`, given `mode` and the jemalloc `library` found.

    What `LD_PRELOAD` already holds is never taken away, whatever the mode:
    one that names jemalloc (the Docker image's) is kept as it is, another
    one is kept with jemalloc put in front of it.
    """
    mode = parse_malloc_mode(mode)
    preload = environ.get("LD_PRELOAD", "").strip()
    if "libjemalloc" in preload:
        return Choice({}, "jemalloc", f"jemalloc, preloaded already (LD_PRELOAD={preload})")
    if mode == "system":
        return Choice({}, "glibc malloc", "glibc malloc (WIRE_MALLOC=system)")
    if library is None:
        if mode == "jemalloc":
            raise ConfigError("environment", "WIRE_MALLOC",
                              f"jemalloc was asked for and no libjemalloc.so.2 is installed ({INSTALL_HINT})")
        return Choice({}, "glibc malloc",
                      f"glibc malloc: no libjemalloc.so.2 found ({INSTALL_HINT} makes extraction faster)")
    value = f"{library}:{preload}" if preload else library
    return Choice({"LD_PRELOAD": value}, "jemalloc", f"jemalloc ({library})")


def in_use(pid: int | str = "self") -> str:
    """The allocator a process runs on, from its memory map: "jemalloc", "glibc malloc" or "unknown" (gone)."""
    try:
        maps = Path(f"/proc/{pid}/maps").read_text()
    except OSError:
        return "unknown"
    return from_maps(maps)


def from_maps(maps: str) -> str:
    """The allocator named by the text of a /proc/<pid>/maps: jemalloc when it is mapped, else glibc's."""
    return "jemalloc" if "libjemalloc" in maps else "glibc malloc"
