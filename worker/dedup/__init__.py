"""Deduplication: one story, however many sites and versions it arrives as.

(Rules and guarantees: see the module docstring of `worker.dedup.engine`.)
"""

from __future__ import annotations

from ..errors import DedupError
from .engine import Dedup
from .models import Decision, Doc

__all__ = ["Decision", "Dedup", "DedupError", "Doc"]
