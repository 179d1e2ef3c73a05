"""Re-ingestion requests from the CLI and `POST /reingest`, one code path for both."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from ..errors import BadURL, ReingestError
from ..fetch.guard import is_public_address
from ..keys import as_text
from ..models import Candidate, Source
from ..pipeline.deps import Deps
from ..settings import parse_duration
from ..urls import canonicalize

MAX_URLS = 1000


@dataclass(frozen=True)
class Request:
    urls: tuple[str, ...] = ()
    source: str | None = None
    since: str | None = None
    all: bool = False
    force: bool = False

    @classmethod
    def from_json(cls, data: Any) -> Request:
        if not isinstance(data, dict):
            raise ReingestError("expected a JSON object with urls, source, since, all, force")
        unknown = set(data) - {"urls", "url", "source", "since", "all", "force"}
        if unknown:
            raise ReingestError(f"unknown field(s): {', '.join(sorted(unknown))}")
        urls = data.get("urls", data.get("url", []))
        if isinstance(urls, str):
            urls = [urls]
        if not isinstance(urls, list) or not all(isinstance(u, str) for u in urls):
            raise ReingestError("urls must be a list of strings")
        for name in ("all", "force"):
            if not isinstance(data.get(name, False), bool):
                raise ReingestError(f"{name} must be true or false")
        for name in ("source", "since"):
            if data.get(name) is not None and not isinstance(data[name], str):
                raise ReingestError(f"{name} must be a string")
        return cls(urls=tuple(urls), source=data.get("source"), since=data.get("since"),
                   all=bool(data.get("all", False)), force=bool(data.get("force", False)))


def _source_for(url: str, sources: tuple[Source, ...]) -> Source | None:
    host = (urlsplit(url).hostname or "").removeprefix("www.")
    for source in sources:
        docs = list(source.feeds) + list(source.sitemaps) + [lst.url for lst in source.listings]
        if any((urlsplit(d).hostname or "").removeprefix("www.") == host for d in docs):
            return source
    return None


def plan(req: Request, deps: Deps, *, now: float | None = None) -> list[Candidate]:
    """Resolve a request into candidates; raises ReingestError naming what is wrong."""
    now = time.time() if now is None else now
    modes = sum([bool(req.urls), req.source is not None, req.all])
    if modes != 1:
        raise ReingestError("give exactly one of: urls, source, all")
    known = deps.sources.sources
    if req.urls:
        if len(req.urls) > MAX_URLS:
            raise ReingestError(f"at most {MAX_URLS} URLs per request")
        out = []
        for raw in req.urls:
            try:
                url = canonicalize(raw)
            except (BadURL, ValueError) as exc:
                raise ReingestError(f"bad URL {raw[:200]!r}: {exc}") from None
            host = urlsplit(url).hostname or ""
            if not deps.settings.allow_private_addresses and not is_public_address(host, deps.settings.allow_addresses):
                raise ReingestError(f"refusing {host}: resolves to a private address")
            source = deps.sources.get(req.source) if req.source else _source_for(url, known)
            if source is None:
                raise ReingestError(f"no configured source serves {host}; known sources: "
                                    + ", ".join(s.name for s in known))
            out.append(Candidate(url=url, source=source.name))
        return out
    names = [s.name for s in known] if req.all else [req.source or ""]
    for name in names:
        if deps.sources.get(name) is None:
            raise ReingestError(f"unknown source {name!r}; known sources: " + ", ".join(s.name for s in known))
    try:
        window = parse_duration(req.since) if req.since else None
    except ValueError as exc:
        raise ReingestError(f"since: {exc}") from None
    out = []
    for name in names:
        low = now - window if window else "-inf"
        for member in deps.redis.zrangebyscore(deps.keys.source_urls(name), low, "+inf"):
            out.append(Candidate(url=as_text(member), source=name))
    return out


def run(req: Request, deps: Deps, enqueue: Callable[[dict[str, Any], bool], None],
        rediscover: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Enqueue the planned fetches; with a source and no window, also re-run its discovery."""
    candidates = plan(req, deps)
    for cand in candidates:
        enqueue(cand.to_json(), req.force)
    rediscovered: list[str] = []
    if rediscover and not req.urls and not req.since:
        for name in ([s.name for s in deps.sources.sources] if req.all else [req.source or ""]):
            rediscover(name)
            rediscovered.append(name)
    return {"enqueued": [c.url for c in candidates], "count": len(candidates),
            "force": req.force, "rediscovered": rediscovered}
