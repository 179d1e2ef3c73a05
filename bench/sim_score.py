"""Scoring what reached `wire:items` against the simulation's truth (pure).

Inputs: the world (stories, waves of pages), the stream entries with the wave
they were published in, and the dedup decisions per page with their wave.
The rules are in the docstring of bench/syndication.py; this module applies
them. The body and metadata comparisons are extract_eval's own
(`shingle_tp_fp_fn`, `shingle_summary`, `title_norm`, `_as_author_list`),
passed in as `ev` so the scores are the dev corpora's.
"""

from __future__ import annotations

import re
import unicodedata
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import combinations
from typing import Any

from sim_world import SITES, Page, World


@dataclass(frozen=True)
class Item:
    """One `wire:items` entry: its position, the wave it was published in, and its item JSON."""

    seq: int
    wave: int
    data: dict[str, Any]


@dataclass(frozen=True)
class Decision:
    """A dedup decision recorded for one page (from `wire explain`), with the wave it was taken in."""

    url: str
    wave: int
    event: str
    story_id: str
    time: float


def served(world: World) -> list[dict[str, Page]]:
    """For each wave, every URL path (site, path) -> the page it serves once the wave is live."""
    out: list[dict[str, Page]] = []
    now: dict[str, Page] = {}
    for wave in world.waves:
        for page in wave.pages:
            now[page_key(page.site, page.path)] = page
        out.append(dict(now))
    return out


def page_key(site: str, path: str) -> str:
    return f"{site}\x00{path}"


_ZW = re.compile("[\u200b\u200c\u200d\u2060\ufeff]")


def norm_dateline(text: str | None) -> str | None:
    if not text:
        return None
    t = _ZW.sub("", unicodedata.normalize("NFKC", text))
    t = " ".join(t.split()).strip(" ,.;:-\u2013\u2014").casefold()
    return t or None


def instant(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        d = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    return d if d.tzinfo else d.replace(tzinfo=UTC)


def _ratio(ok: int, n: int) -> float | None:
    return round(ok / n, 3) if n else None


def score(world: World, items: list[Item], decisions: list[Decision], url_key: dict[str, str],
          ev: Any) -> dict[str, Any]:
    """Every measure of the run. `url_key` maps a URL as wire reports it to `page_key(site, path)`."""
    pages_at = served(world)
    stories = world.stories

    def truth_of(url: str, wave: int) -> Page | None:
        key = url_key.get(url)
        return pages_at[wave].get(key) if key is not None else None

    # ---------------------------------------------------------------- events per story
    own: dict[str, str] = {}  # story -> the story_id of its first `new`
    new_version: dict[str, int] = {}  # story -> version of the page its first `new` came from
    news: dict[str, int] = defaultdict(int)
    credited: set[tuple[str, int]] = set()
    seen_via = {"an updated page fetched again": 0, "a page new to wire": 0}
    spurious = {"copy of a version already published": 0, "under another story's id": 0, "not a simulated page": 0}
    spurious_list: list[dict[str, Any]] = []
    published: list[tuple[Item, Page]] = []
    trail: list[dict[str, Any]] = []  # every published item, for reading a run
    for item in items:
        page = truth_of(item.data["url"], item.wave)
        if page is None:
            if item.data["event"] == "update":
                spurious["not a simulated page"] += 1
            continue
        published.append((item, page))
        trail.append({"wave": item.wave, "site": page.site, "story": page.story, "version": page.version,
                      "event": item.data["event"], "story_id": item.data["story_id"],
                      "wire_version": item.data.get("version")})
        sid = page.story
        if item.data["event"] == "new":
            news[sid] += 1
            if sid not in own:
                own[sid], new_version[sid] = item.data["story_id"], page.version
            continue
        key = (sid, page.version)
        if own.get(sid) != item.data["story_id"]:
            why = "under another story's id"
        elif page.version >= 2 and key not in credited and page.version > new_version.get(sid, 1):
            credited.add(key)
            prev = pages_at[item.wave - 1].get(page_key(page.site, page.path)) if item.wave > 0 else None
            seen_via["an updated page fetched again" if prev is not None else "a page new to wire"] += 1
            continue
        else:
            why = "copy of a version already published"
        spurious[why] += 1
        spurious_list.append({"story": sid, "version": page.version, "site": page.site, "wave": item.wave,
                              "why": why})

    versions: dict[tuple[str, int], list[Page]] = defaultdict(list)
    for wave in world.waves:
        for page in wave.pages:
            if page.version >= 2:
                versions[(page.story, page.version)].append(page)
    real = {k for k in versions if k[1] > new_version.get(k[0], 1)}
    decided_pages: dict[tuple[str, int], set[str]] = defaultdict(set)  # (story, version) -> sites decided
    for d in decisions:
        page = truth_of(d.url, d.wave)
        if page is not None:
            decided_pages[(page.story, page.version)].add(page.site)
    missed = sorted(real - credited)
    old_before = {k for k in missed if any(p.site == "oldstyle" for w in world.waves for p in w.pages
                                           if p.story == k[0] and p.version < k[1])}
    never_fetched = {k for k in missed if not decided_pages.get(k)}
    decided_stories = {k[0] for k in decided_pages}
    swallowed = sorted(s for s in stories if news[s] == 0 and s in decided_stories)
    unseen = sorted(s for s in stories if news[s] == 0 and s not in swallowed)

    # ---------------------------------------------------------------- pairwise clustering
    unit_story: dict[tuple[str, int], str] = {}  # (page key, version) -> story_id wire gave it first
    unit_truth: dict[tuple[str, int], str] = {}
    for d in sorted(decisions, key=lambda d: d.time):
        page = truth_of(d.url, d.wave)
        if page is None or not d.story_id:
            continue
        unit = (page_key(page.site, page.path), page.version)
        unit_story.setdefault(unit, d.story_id)
        unit_truth[unit] = page.story
    same_truth = same_wire = both = 0
    for a, b in combinations(sorted(unit_story), 2):
        t, w = unit_truth[a] == unit_truth[b], unit_story[a] == unit_story[b]
        same_truth += t
        same_wire += w
        both += t and w
    merged_pairs = sorted({tuple(sorted((unit_truth[a], unit_truth[b]))) for a, b in combinations(sorted(unit_story), 2)
                           if unit_story[a] == unit_story[b] and unit_truth[a] != unit_truth[b]})

    # ---------------------------------------------------------------- metadata and bodies
    fields = ("agency", "dateline", "authors", "title", "day", "instant")
    groups = ("syndicated", "staff", "all", *(s.key for s in SITES))
    hits: dict[str, dict[str, list[int]]] = {g: {f: [0, 0] for f in fields} for g in groups}
    rows: dict[str, list[tuple[float, float, float]]] = defaultdict(list)
    misses: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for item, page in published:
        data = item.data
        truth_day = page.published_truth[:10]
        got_day = (data.get("published_at") or "")[:10] or None
        checks = {
            "agency": (data.get("agency") or "").casefold() == (page.agency or "").casefold(),
            "dateline": norm_dateline(data.get("dateline")) == norm_dateline(page.dateline),
            "authors": set(ev._as_author_list(data.get("authors") or [])) == set(ev._as_author_list(list(page.authors))),
            "title": ev.title_norm(data.get("title")) == ev.title_norm(page.title),
            "day": got_day == truth_day,
            "instant": instant(data.get("published_at")) == instant(page.published_truth),
        }
        truth_values = {"agency": page.agency, "dateline": page.dateline, "authors": list(page.authors),
                        "title": page.title, "day": truth_day, "instant": page.published_truth}
        got_values = {"agency": data.get("agency"), "dateline": data.get("dateline"), "authors": data.get("authors"),
                      "title": data.get("title"), "day": got_day, "instant": data.get("published_at")}
        group = "syndicated" if page.agency else "staff"
        for f, ok in checks.items():
            for g in (group, "all", page.site):
                hits[g][f][0] += ok
                hits[g][f][1] += 1
            if not ok and len(misses[f]) < 200:
                misses[f].append({"site": page.site, "story": page.story, "truth": truth_values[f],
                                  "wire": got_values[f]})
        rows[page.site].append(ev.shingle_tp_fp_fn(page.body, data.get("body") or ""))
        rows["all"].append(rows[page.site][-1])

    body = {k: {m: round(v, 3) for m, v in ev.shingle_summary(r).items()} | {"pages": len(r)}
            for k, r in rows.items()}
    n_pages = len({page_key(p.site, p.path) for w in world.waves for p in w.pages})
    return {
        "stories": len(stories),
        "pages": n_pages,
        "page_versions": sum(len(w.pages) for w in world.waves),
        "waves": len(world.waves),
        "items": {"total": len(items), "new": sum(i.data["event"] == "new" for i in items),
                  "update": sum(i.data["event"] == "update" for i in items)},
        "events": {
            "exactly_one_new": sum(1 for s in stories if news[s] == 1),
            "extra_new": sum(max(0, news[s] - 1) for s in stories),
            "stories_with_extra_new": sorted(s for s in stories if news[s] > 1),
            "swallowed": swallowed,
            "never_decided": unseen,
            "real_updates": len(real),
            "updates_seen": len(credited & real),
            "updates_seen_via": seen_via,
            "updates_missed": [list(k) for k in missed],
            "missed_with_old_style_copy_before": len(old_before),
            "missed_never_refetched": len(never_fetched),
            "spurious_updates": sum(spurious.values()),
            "spurious_by_kind": spurious,
            "spurious_list": sorted(spurious_list, key=lambda x: (x["wave"], x["site"], x["story"], x["version"])),
        },
        "clustering": {"precision": _ratio(both, same_wire), "recall": _ratio(both, same_truth),
                       "units": len(unit_story), "merged_story_pairs": [list(p) for p in merged_pairs]},
        "metadata": {g: {f: _ratio(*hits[g][f]) for f in fields} | {"items": hits[g]["agency"][1]}
                     for g in ("syndicated", "staff", "all")},
        "metadata_by_template": {s.key: {f: _ratio(*hits[s.key][f]) for f in fields} | {"items": hits[s.key]["agency"][1]}
                                 for s in SITES},
        "metadata_misses": dict(misses),
        "published": sorted(trail, key=lambda x: (x["wave"], x["site"], x["story"], x["version"], x["event"])),
        "body": body,
        "templates": [s.key for s in SITES],
    }
