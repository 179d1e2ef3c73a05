"""Extractors in the shape ``../shared/tools/extract_eval.py`` calls: ``f(html, url) -> dict``.

    python ../shared/tools/extract_eval.py --bench readability --data ../shared/corpus/extraction \
        --extractor extract_adapters:wire --pythonpath bench --pythonpath .

- ``wire``: ``worker.extract.extract`` (body, title, authors, published).
- ``trafilatura_meta``: trafilatura 2.x with its metadata (``bare_extraction(with_metadata=True)``),
  the library wire builds on, as a baseline.
- ``htmldate_only``: htmldate's own publication date (``extensive_search``, ``original_date``),
  the date baseline; no body.
"""

from __future__ import annotations

from typing import Any

import trafilatura
from htmldate import find_date

from worker.extract import extract_dict


def wire(html: bytes, url: str | None) -> dict[str, Any]:
    return extract_dict(html, url)


def trafilatura_meta(html: bytes, url: str | None) -> dict[str, Any]:
    doc = trafilatura.bare_extraction(html, url=url, with_metadata=True, include_comments=False)
    if doc is None:
        return {"body": ""}
    data = doc if isinstance(doc, dict) else doc.as_dict()
    author = data.get("author")
    return {
        "body": data.get("text") or "",
        "title": data.get("title"),
        "authors": [a.strip() for a in author.split(";") if a.strip()] if author else [],
        "published": data.get("date"),
    }


def htmldate_only(html: bytes, url: str | None) -> dict[str, Any]:
    return {"body": "", "published": find_date(html, url=url, original_date=True, extensive_search=True)}
