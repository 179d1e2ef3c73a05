"""Deduplication: one story, however many sites and versions it arrives as.

(Rules and guarantees: see the module docstring of `worker.dedup.engine`.)
"""

from __future__ import annotations

from .engine import Dedup
from .models import Decision, Doc
from .store import DedupError

__all__ = ["Decision", "Dedup", "DedupError", "Doc"]
