"""The trail: the path of every URL wire has seen, for `wire explain` and the console.

Each stage appends what became of a URL, as small JSON events, to one Redis
list per candidate URL (`Keys.trail`: the canonical URL discovery found),
queued on a pipeline the stage executes anyway: discovery's final pipeline,
the fetch hand-off, the process stage's `finish_pages`, the dead letter's
transaction, `park`. A trail costs no round trip of its own.

Bounded: a list keeps its newest TRAIL_MAX_EVENTS events (LTRIM) and expires
with the dedup window, refreshed by every write. Other spellings of the URL
(the address after redirects, the page's rel=canonical) get an alias key
pointing at the candidate URL, with the same expiry, so `wire explain`
finds the trail from any of them.

An event is a JSON object: `t` (unix time), `ev` (its kind) and the fields
of its kind:

    discovered    source, via (the feed, sitemap or listing URL), doc (feed|sitemap|listing), lastmod
    fetch         n (attempt), status (HTTP), bytes, final (after redirects), ms, reason, error
    not_modified  the conditional GET answered 304: nothing to process
    skipped       stage, reason, error: the URL ends here (robots.txt, the address guard, 404, not an article,
                  a link discovery refuses as written ...)
    retry         reason, wait (seconds)
    parked        reason, until (unix time)
    refetch       n: the stored page expired before the process stage read it, so it is fetched again
    dead          stage, reason, error: dead-lettered (`wire dlq`)
    published     story, version, event (new|update), canonical
    duplicate     story, version, kind (url|exact|near), sim, matched, canonical

URLs and error texts are redacted before they are stored: no userinfo, no
secret-looking query values.
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import redis

from .errors import BadURL
from .fetch.http import UNFETCHABLE
from .keys import TRAIL_MAX_EVENTS, Keys, as_text
from .logs import mask_credentials
from .urls import canonicalize, redact

_URL_FIELDS = frozenset({"via", "final", "matched", "canonical"})
ERROR_MAX = 300  # characters of an error text kept in an event


def event(kind: str, t: float, /, **fields: Any) -> dict[str, Any]:
    """One trail event; fields that are None are left out, URLs and errors redacted."""
    out: dict[str, Any] = {"t": round(t, 3), "ev": kind}
    for name, value in fields.items():
        if value is None:
            continue
        if name in _URL_FIELDS:
            value = redact(str(value))
        elif name == "error":
            value = mask_credentials(str(value))[:ERROR_MAX]
        out[name] = value
    return out


def pack(ev: dict[str, Any]) -> str:
    return json.dumps(ev, ensure_ascii=False, separators=(",", ":"))


@dataclass(frozen=True)
class Trail:
    """Queues trail writes on a caller's pipeline (the caller executes it)."""

    keys: Keys
    ttl: int  # seconds: the dedup window

    def add(self, pipe: Any, url: str, *events: dict[str, Any]) -> None:
        if not events:
            return
        key = self.keys.trail(url)
        pipe.rpush(key, *[pack(e) for e in events])
        pipe.ltrim(key, -TRAIL_MAX_EVENTS, -1)
        pipe.expire(key, self.ttl)

    def alias(self, pipe: Any, other: str | None, url: str) -> None:
        """Let `other` (the URL after redirects, or rel=canonical) find `url`'s trail."""
        if not other:
            return
        with contextlib.suppress(BadURL, ValueError):
            other = canonicalize(other)
        if other != url:
            pipe.set(self.keys.trail_alias(other), url, ex=self.ttl)


@dataclass(frozen=True)
class Found:
    url: str | None  # the candidate URL whose trail this is (None: nothing recorded)
    events: list[dict[str, Any]]


def spellings(url: str) -> list[str]:
    """The URL as given and in canonical form (how discovery keys it)."""
    out = [url]
    try:
        canonical = canonicalize(url)
    except (BadURL, ValueError):
        return out
    return out if canonical == url else [url, canonical]


def read(client: redis.Redis, keys: Keys, url: str) -> Found:
    """The trail of `url` given as fetched, canonical or after redirects, oldest event first."""
    names = spellings(url)
    pipe = client.pipeline(transaction=False)
    for name in names:
        pipe.lrange(keys.trail(name), 0, -1)
        pipe.get(keys.trail_alias(name))
    replies = pipe.execute()
    for i, name in enumerate(names):
        if replies[2 * i]:
            return Found(name, events_of(replies[2 * i]))
    for i in range(len(names)):
        target = replies[2 * i + 1]
        if target:
            candidate = as_text(target)
            return Found(candidate, events_of(client.lrange(keys.trail(candidate), 0, -1)))
    return Found(None, [])


def events_of(raw: Any) -> list[dict[str, Any]]:
    """Stored events (LRANGE's reply) as dicts, oldest first; an unreadable one is left out."""
    out = []
    for item in raw or []:
        try:
            ev = json.loads(as_text(item))
        except ValueError:
            continue
        if isinstance(ev, dict):
            out.append(ev)
    # stages write from different processes: discovery's pipeline may land after the first fetch's
    return sorted(out, key=lambda e: float(e.get("t") or 0))


def when(t: Any) -> str:
    try:
        return datetime.fromtimestamp(float(t), UTC).strftime("%Y-%m-%d %H:%M:%SZ")
    except (TypeError, ValueError, OverflowError, OSError):
        return "?"


def describe(ev: dict[str, Any]) -> str:
    """One event as a line of text (pure): what happened, with its reason."""
    kind = ev.get("ev")
    g = ev.get
    why = f": {g('error')}" if g("error") else ""
    if kind == "discovered":
        lastmod = f" (lastmod {g('lastmod')})" if g("lastmod") else ""
        return f"discovered by source {g('source')} in the {g('doc') or 'document'} {g('via')}{lastmod}"
    if kind == "fetch":
        parts = [f"fetch #{g('n') or 1}:"]
        parts.append(f"HTTP {g('status')}" if g("status") else "no HTTP answer")
        if g("bytes") is not None:
            parts.append(f"{g('bytes'):,} bytes")
        if g("ms") is not None:
            parts.append(f"in {g('ms')} ms")
        if g("final"):
            parts.append(f"from {g('final')}")
        if g("reason"):
            parts.append(f"({g('reason')}{why})")
        return " ".join(parts)
    if kind == "not_modified":
        return "not modified (304): nothing new to process"
    if kind == "skipped":
        reason = g("reason")
        if g("stage") == "discover":
            return f"refused at discovery ({reason}){why}: not fetched"
        if reason in UNFETCHABLE:
            return f"refused by the address guard ({reason}){why}"
        if reason == "robots_denied":
            return "refused by robots.txt"
        return f"skipped at {g('stage') or 'fetch'}: {reason}{why}"
    if kind == "retry":
        return f"retried after {float(g('wait') or 0):.1f} s ({g('reason')})"
    if kind == "parked":
        return f"parked until {when(g('until'))} ({g('reason')})"
    if kind == "refetch":
        return f"the stored page expired before it was processed: fetched again (refetch {g('n')})"
    if kind == "dead":
        return f"dead-lettered at {g('stage')}: {g('reason')}{why} (see wire dlq list)"
    if kind == "published":
        canonical = f" as {g('canonical')}" if g("canonical") else ""
        return f"published{canonical} as story {g('story')} version {g('version')} ({g('event')})"
    if kind == "duplicate":
        matched = f" ~ {g('matched')}" if g("matched") else ""
        return (f"duplicate of story {g('story')} version {g('version')} ({g('kind')}, similarity "
                f"{g('sim')}){matched}")
    return f"{kind}"
