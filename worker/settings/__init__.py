"""Configuration: environment variables (12-factor) and `config/sources.yaml`.

Both are read once, at an entrypoint, into frozen values; nothing here runs at
import time. Every error names the file (or variable), the source and the field.

`env` reads every `WIRE_*` variable into `Settings` (and parses their values:
durations, networks, URLs, the allocator); `sources` reads and validates the
sources file into `SourcesConfig`.
"""

from __future__ import annotations

from .env import (
    MALLOC_MODES,
    Network,
    Settings,
    parse_duration,
    parse_malloc_mode,
    parse_networks,
    require_strong_admin_token,
)
from .sources import SourcesConfig, load_sources, parse_sources

__all__ = [
    "MALLOC_MODES",
    "Network",
    "Settings",
    "SourcesConfig",
    "load_sources",
    "parse_duration",
    "parse_malloc_mode",
    "parse_networks",
    "parse_sources",
    "require_strong_admin_token",
]
