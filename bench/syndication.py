"""What a newsroom sees downstream: six loopback news sites carrying the same wire stories, three phases.

    .venv/bin/python bench/syndication.py [--quick] [--seed N] [--json] [--interval 5s]
                                          [--shared DIR] [--anchor ISO] [--keep DIR] [--wave-deadline S]

Needs the extraction corpus and scorer of ../shared (`corpus/extraction/
scrapinghub/truth.json`, `tools/extract_eval.py`); `--shared` points
elsewhere. The default run takes 5 to 10 minutes, `--quick` 2 to 4.

**The simulation.** Six sites on their own loopback addresses
(tests/support/loopback.py), each in its own template with its own furniture
(bench/sim_sites.py: a WordPress site, an AMP site, a 1990s local paper, a
modern site with JSON-LD, a site with a "Trending now" list that changes on
every fetch, a regional portal), each with robots.txt, a feed (RSS 2.0,
RSS 0.91, Atom or JSON Feed) and a sitemap with `lastmod`, three with a
Google News sitemap. The stories (bench/sim_world.py) are real article
bodies of the extraction corpus dressed as AP, Reuters, AFP and dpa copy,
plus a few staff stories per run; a syndicated story appears on 2 to 6
sites, each with its own headline style, trimmed tail or added
"contributed to this report" line, and now and then a zero-width space, a
mis-decoded character or a non-breaking space.

- Phase 1 publishes stories. Phase 2 adds stories, two hard negatives (a
  story sharing the opening paragraph of an earlier one, under the same
  dateline; a story sharing three background paragraphs of another), and
  version 2 of some stories (2-4 paragraphs restored, the lede's number
  moved) on some of the sites that carry them, sometimes a new site picking
  the story up; the sitemap's `lastmod` moves, the feed's date only where
  the feed has one and only for half of those updates. Phase 3 adds
  stories, version 3 of some, and version 2 of stories whose version 1 sat
  on the old-style site (the first updated copy on another site).
- Each phase goes live in waves: the k-th copy of a story in that phase goes
  live in wave k, and the next wave waits until the pipeline is idle. So
  the order in which wire meets the copies of a story is fixed by the seed,
  not by the machine's load, and the scores do not depend on timing.
- wire runs as shipped (`wire worker` for discover+fetch on threads, `wire
  worker` for process on prefork, `wire beat`, a private Redis) with two
  settings changed: each source's `interval` (`--interval`, default 5s) and
  `WIRE_ALLOW_PRIVATE_ADDRESSES=1` (the sites are on loopback).
- Idle, after a wave goes live at time T: every source has finished a
  discovery that started after T, every URL discovered so far has an
  outcome (wire's counters: not_modified + published + duplicates +
  skipped + failed >= discovered), and nothing waits in the fetch or
  process queue or is parked. A wave that is not idle within
  `--wave-deadline` seconds is reported and the run goes on.

**The scoring rules** (bench/sim_score.py). A `wire:items` entry is matched
to the page its URL served in the wave it was published in.

- Stories: each story (all its copies and versions) should get exactly one
  `new`. A story with none is *swallowed* when wire decided at least one of
  its pages (merged into another story, or dropped as a duplicate of one),
  *never decided* otherwise. Extra `new`s count each `new` beyond the first.
- Updates: each version v >= 2 of a story is one real update, however many
  sites carry it. It is *seen* when an `update` comes from a page serving
  version v under the story_id of the story's first `new`, once; every
  other `update` is *spurious*: a copy of a version already published
  (another site's copy of v2, version 1 on a site whose furniture differs,
  a re-fetch), or one published under another story's id (a merge). A
  version that the story's first `new` already carried is not a real
  update. Missed updates are split by cause: never re-fetched (no dedup
  decision on any page of that version), and how many had an old-style copy
  of an earlier version.
- Clustering: one unit per page and version that wire decided (`wire
  explain`: its first decision); pairwise precision and recall of wire's
  story_id against the truth story.
- Metadata, over the published items, syndicated and staff apart: agency
  (case-insensitive; null for staff), dateline (NFKC, zero-width characters
  removed, case-insensitive; the place as written in the lede, without the
  Reuters date), authors (the exact set of person names, extract_eval's
  author comparison), title (the page's headline, extract_eval's
  `title_norm`), publication day (the first ten characters of
  `published_at`, as the page states it), publication instant (the same
  moment). The old-style site's `Posted:` line states no zone: per the
  contract its wall clock is expected with `Z`.
- Body: extract_eval's 4-gram shingle F1, per template, over the published
  items, against the page's clean story text (the lede with its dateline,
  the Reuters reporting line and any "contributed" line; no headline,
  byline, caption or furniture; the injected corruption undone).

The world is fixed by `--seed` and the anchor time (default: the start of
the run's UTC day), and so are the fetches and the scores: two runs with
the same seed on the same day give the same tables. The calendar dates move
with the anchor, so the day measures of runs on different days differ a
little (a `MM/DD` line is ambiguous on some days and not on others).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import shutil
import sys
import tempfile
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime
from pathlib import Path
from types import ModuleType
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT))

from sim_score import Decision, Item, page_key, score  # noqa: E402
from sim_sites import DISCOVERY, DYNAMIC, discovery_document, document_etag, etag, render  # noqa: E402
from sim_world import SITES, Page, Wave, World, build_world, load_corpus  # noqa: E402

ADDRESS = "127.0.61.{}"


def find_shared(given: Path | None) -> Path:
    """../shared beside the repository (or beside the folder above it, for a worktree)."""
    if given is not None:
        return given
    for candidate in (ROOT.parent / "shared", ROOT.parent.parent / "shared"):
        if candidate.is_dir():
            return candidate
    return ROOT.parent / "shared"


def load_scorer(path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location("extract_eval", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["extract_eval"] = module
    spec.loader.exec_module(module)
    return module


# ----------------------------------------------------------------------------- the sites


ROUND_STALE = 60.0  # seconds after which a discovery round that never read its last document is forgotten


class Sites:
    """The six sites on loopback, serving the pages of the waves published so far.

    A wave goes live on a site only between two of wire's discovery rounds
    of that site (a round reads the site's feed first and its last sitemap
    last): a round that read the feed before the switch and a sitemap after
    it would see half a wave, and what wire then re-fetches would depend on
    the machine's timing.
    """

    def __init__(self, world: World) -> None:
        from tests.support.loopback import SiteServer

        self.world = world
        self.server = SiteServer()
        self.pages: dict[str, dict[str, Page]] = {s.key: {} for s in SITES}
        self.feed_dates: dict[str, dict[str, datetime]] = {s.key: {} for s in SITES}
        self.base: dict[str, str] = {}
        self.locks = {s.key: threading.Lock() for s in SITES}
        self.rounds: dict[str, list[float]] = {s.key: [] for s in SITES}  # start times of rounds in progress
        for i, spec in enumerate(SITES, start=1):
            site = self.server.add(spec.key, ADDRESS.format(i))
            self.base[spec.key] = site.base
            feeds, sitemaps = DISCOVERY[spec.key]
            for path in ["/robots.txt", *feeds, *sitemaps]:
                site.routes[path] = self._document(spec.key, path)

    def publish(self, wave: Wave) -> None:
        by_site: dict[str, list[Page]] = defaultdict(list)
        for page in wave.pages:
            by_site[page.site].append(page)
        for name, pages in by_site.items():
            while True:
                with self.locks[name]:
                    open_rounds = self.rounds[name]
                    open_rounds[:] = [t for t in open_rounds if time.monotonic() - t < ROUND_STALE]
                    if not open_rounds:
                        self._apply(name, pages)
                        break
                time.sleep(0.02)

    def _apply(self, name: str, pages: list[Page]) -> None:
        site = self.server.sites[name]
        live = self.pages[name]
        for page in pages:
            if page.path not in live or page.feed_moves:
                self.feed_dates[name][page.path] = page.modified
            live[page.path] = page
            if page.path not in site.routes:
                site.routes[page.path] = self._page(name, page.path)
            if name == "modern":  # the sitemap index points at a monthly child
                month = f"/sitemaps/articles-{page.modified:%Y-%m}.xml"
                site.routes.setdefault(month, self._document(name, month))

    def _page(self, site: str, path: str) -> Any:
        from tests.support.loopback import Resp

        def route(count: int, headers: dict[str, str]) -> Resp:
            page = self.pages[site][path]
            data, ctype = render(page, list(self.pages[site].values()), self.base[site], self.world.seed, count)
            if site in DYNAMIC:
                return Resp(200, {"Content-Type": ctype}, data)
            tag = etag(data)
            if headers.get("If-None-Match") == tag:
                return Resp(304, {"ETag": tag})
            return Resp(200, {"Content-Type": ctype, "ETag": tag,
                              "Last-Modified": format_datetime(page.modified.astimezone(UTC), usegmt=True)}, data)

        return route

    def _document(self, site: str, path: str) -> Any:
        from tests.support.loopback import Resp

        feeds, sitemaps = DISCOVERY[site]

        def route(count: int, headers: dict[str, str]) -> Resp:
            with self.locks[site]:
                if path == feeds[0]:
                    self.rounds[site].append(time.monotonic())
                elif path == sitemaps[-1] and self.rounds[site]:
                    self.rounds[site].pop(0)
                pages = list(self.pages[site].values())
                got = discovery_document(site, path, pages, self.base[site], self.feed_dates[site])
            if got is None:
                return Resp(404, {"Content-Type": "text/plain"}, b"not found")
            data, ctype = got
            tag = document_etag(site, path, data, pages)
            if tag is None:
                return Resp(200, {"Content-Type": ctype}, data)
            if headers.get("If-None-Match") == tag:
                return Resp(304, {"ETag": tag})
            return Resp(200, {"Content-Type": ctype, "ETag": tag}, data)

        return route

    def sources_yaml(self, interval: str) -> str:
        out = ["sources:"]
        for spec in SITES:
            feeds, sitemaps = DISCOVERY[spec.key]
            base = self.base[spec.key]
            out += [f"- name: {spec.key}", f"  feeds: {json.dumps([base + f for f in feeds])}",
                    f"  sitemaps: {json.dumps([base + s for s in sitemaps])}", f"  interval: {interval}"]
        return "\n".join(out) + "\n"

    def url_keys(self) -> dict[str, str]:
        """Every page URL, as fetched and canonical, -> its page key."""
        from worker.urls import canonicalize

        out: dict[str, str] = {}
        for wave in self.world.waves:
            for page in wave.pages:
                url = self.base[page.site] + page.path
                out[url] = out[canonicalize(url)] = page_key(page.site, page.path)
        return out


# ----------------------------------------------------------------------------- running wire


@dataclass
class Run:
    items: list[Item] = field(default_factory=list)
    decisions: list[Decision] = field(default_factory=list)
    waves: list[dict[str, Any]] = field(default_factory=list)
    requests: int = 0
    fetches: list[dict[str, Any]] = field(default_factory=list)  # every request for an article page
    seconds: float = 0.0
    work: Path | None = None


def _stream_id(raw: bytes | str) -> tuple[int, int]:
    text = raw.decode() if isinstance(raw, bytes) else raw
    ms, _, seq = text.partition("-")
    return int(ms), int(seq or 0)


def idle(client: Any, keys: Any, names: list[str], since: float) -> bool:
    """Every source finished a discovery started after `since`, and every URL discovered has an outcome."""
    from worker.keys import as_text
    from worker.ops.status import queue_depths

    pipe = client.pipeline(transaction=False)
    for name in names:
        pipe.hget(keys.source_state(name), "last_discovery")
    pipe.hgetall(keys.stats())
    pipe.zcard(keys.parked())
    *last, stats, parked = pipe.execute()
    if any(v is None or float(v) <= since for v in last):
        return False
    counts = {as_text(k): int(float(v)) for k, v in stats.items()}
    done = sum(counts.get(k, 0) for k in ("not_modified", "published", "duplicates", "skipped", "failed"))
    if done < counts.get("discovered", 0) or parked:
        return False
    depths = queue_depths(client)
    return depths.get("fetch", 0) == 0 and depths.get("process", 0) == 0


def run_wire(world: World, sites: Sites, interval: str, wave_deadline: float, keep: Path | None,
             say: Any) -> Run:
    import redis as redis_lib

    from tests.support.cluster import Cluster
    from tests.support.env import wire_env
    from worker.dedup.engine import Dedup
    from worker.keys import Keys
    from worker.ops.redis_server import start_redis

    work = keep or Path(tempfile.mkdtemp(prefix="wire-syndication-"))
    work.mkdir(parents=True, exist_ok=True)
    (work / "logs").mkdir(exist_ok=True)
    run = Run(work=work)
    started = time.monotonic()
    redis_proc = start_redis(work / "redis", appendonly=False)
    client = redis_lib.Redis.from_url(redis_proc.url)
    keys = Keys.for_prefix("wire")
    sources = work / "sources.yaml"
    sources.write_text(sites.sources_yaml(interval))
    env = wire_env(redis_url=redis_proc.url, sources=sources, allow_private_addresses=1, log_format="json",
                   log_level="WARNING", data_dir=work / "data")
    cluster = Cluster(env, work / "logs")
    names = [s.key for s in SITES]
    bounds: list[tuple[int, tuple[int, int], float]] = []  # (wave, last stream id when idle, when it began)
    try:
        for n, wave in enumerate(world.waves):
            began = time.time()  # what wire does from here on belongs to this wave
            sites.publish(wave)
            switched = time.time()  # every site serves the wave from here on
            if n == 0:
                cluster.start("fetch", "worker", "--queues", "discover,fetch", "--pool", "threads", "--name", "fetch")
                cluster.start("process", "worker", "--queues", "process", "--pool", "prefork", "--name", "process")
                cluster.start("beat", "beat")
            t0 = time.monotonic()
            deadline = t0 + wave_deadline + (60 if n == 0 else 0)  # the first wave also waits for start-up
            ok = False
            while time.monotonic() < deadline:
                if idle(client, keys, names, switched):
                    ok = True
                    break
                if any(p.poll() is not None for p in cluster.procs):
                    raise RuntimeError(f"a wire process exited; logs in {work / 'logs'}")
                time.sleep(0.25)
            last: Any = client.xrevrange(keys.items_stream, count=1)
            bounds.append((n, _stream_id(last[0][0]) if last else (0, 0), began))
            run.waves.append({"wave": n, "phase": wave.phase, "pages": len(wave.pages), "idle": ok,
                              "seconds": round(time.monotonic() - t0, 1)})
            say(f"wave {n + 1}/{len(world.waves)} (phase {wave.phase}): {len(wave.pages)} pages live, "
                + (f"idle after {time.monotonic() - t0:.1f} s" if ok else f"NOT idle after {wave_deadline:.0f} s"))
        entries: Any = client.xrange(keys.items_stream)
        for sid, fields in entries:
            at = _stream_id(sid)
            in_wave = next((w for w, end, _ in bounds if at <= end), bounds[-1][0])
            run.items.append(Item(seq=len(run.items), wave=in_wave, data=json.loads(fields[b"data"])))
        dedup = Dedup(client, keys.dedup_ns())
        switches = [s for _, _, s in bounds]
        seen: set[str] = set()
        for url in sites.url_keys():
            for entry in dedup.explain(url):
                key = f"{entry.get('url')}\x00{entry.get('time')}"
                if key in seen:
                    continue
                seen.add(key)
                t = float(entry.get("time") or 0)
                in_wave = max((i for i, s in enumerate(switches) if s <= t), default=0)
                run.decisions.append(Decision(url=url, wave=in_wave, event=str(entry.get("event")),
                                              story_id=str(entry.get("story_id") or ""), time=t))
        run.requests = len(sites.server.log)
        articles = {(p.site, p.path) for w in world.waves for p in w.pages}
        for r in sites.server.requests():
            if (r.host, r.path) in articles:
                in_wave = max((i for i, s in enumerate(switches) if s <= r.time), default=0)
                run.fetches.append({"wave": in_wave, "site": r.host, "path": r.path, "status": r.status,
                                    "conditional": "If-None-Match" in r.headers or "If-Modified-Since" in r.headers})
    finally:
        cluster.stop()
        client.close()
        redis_proc.stop()
        sites.server.stop()
        run.seconds = time.monotonic() - started
    return run


# ----------------------------------------------------------------------------- the report


def _f(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.3f}".lstrip("0") if x < 1 else f"{x:.3f}"


def table(result: dict[str, Any], meta: dict[str, Any]) -> str:
    e, c, m, b = result["events"], result["clustering"], result["metadata"], result["body"]
    lines = [
        f"syndication: seed {meta['seed']}, {'quick' if meta['quick'] else 'full'}, anchor {meta['anchor']}, "
        f"{result['stories']} stories, {result['pages']} pages ({result['page_versions']} page versions) on 6 sites, "
        f"{result['waves']} waves, {meta['seconds']:.0f} s",
        "",
        "| measure | value |",
        "|---|---:|",
        f"| items published (new / update) | {result['items']['total']} ({result['items']['new']} / "
        f"{result['items']['update']}) |",
        f"| stories with exactly one `new` | {e['exactly_one_new']} of {result['stories']} |",
        f"| extra `new` (a story published again as new) | {e['extra_new']} |",
        f"| stories swallowed (decided, never their own `new`) | {len(e['swallowed'])} |",
        f"| stories never decided | {len(e['never_decided'])} |",
        f"| real updates seen / real | {e['updates_seen']} / {e['real_updates']} |",
        f"| seen on: an updated page fetched again; a page new to wire | "
        f"{e['updates_seen_via']['an updated page fetched again']}; {e['updates_seen_via']['a page new to wire']} |",
        f"| real updates missed: never re-fetched; with an old-style copy before | "
        f"{len(e['updates_missed'])}: {e['missed_never_refetched']}; {e['missed_with_old_style_copy_before']} |",
        f"| spurious updates (copy of a published version; under another story) | {e['spurious_updates']} "
        f"({e['spurious_by_kind']['copy of a version already published']}; "
        f"{e['spurious_by_kind']['under another story' + chr(39) + 's id']}) |",
        f"| pairwise clustering precision / recall ({c['units']} page versions) | {_f(c['precision'])} / "
        f"{_f(c['recall'])} |",
        "",
        f"| metadata, published items | syndicated ({m['syndicated']['items']}) | staff ({m['staff']['items']}) | "
        f"all ({m['all']['items']}) |",
        "|---|---:|---:|---:|",
    ]
    for f in ("agency", "dateline", "authors", "title", "day", "instant"):
        label = {"day": "publication day", "instant": "publication instant"}.get(f, f)
        lines.append(f"| {label} | {_f(m['syndicated'][f])} | {_f(m['staff'][f])} | {_f(m['all'][f])} |")
    templates = result["templates"]
    bt = result["metadata_by_template"]
    lines += ["", "| by template (published items) | " + " | ".join(templates) + " | all |",
              "|---|" + "---:|" * (len(templates) + 1),
              "| items | " + " | ".join(str(b.get(t, {}).get("pages", 0)) for t in templates)
              + f" | {b['all']['pages']} |",
              "| body F1 (4-gram shingles) | " + " | ".join(_f(b.get(t, {}).get("f1")) for t in templates)
              + f" | {_f(b['all']['f1'])} |"]
    for f in ("agency", "dateline", "authors", "title", "day", "instant"):
        label = {"day": "publication day", "instant": "publication instant"}.get(f, f)
        lines.append(f"| {label} | " + " | ".join(_f(bt[t][f]) for t in templates) + f" | {_f(m['all'][f])} |")
    bad = [w for w in meta["waves"] if not w["idle"]]
    if bad:
        lines += ["", f"WARNING: {len(bad)} wave(s) not idle within the deadline: "
                      + ", ".join(str(w["wave"] + 1) for w in bad) + " (scores cover what was published)"]
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--quick", action="store_true", help="fewer stories and sites per story (2-4 minutes)")
    ap.add_argument("--json", action="store_true", help="print the whole result as JSON instead of the table")
    ap.add_argument("--interval", default="5s", help="every source's discovery interval (default 5s)")
    ap.add_argument("--shared", type=Path, default=None, help="the shared folder (default: ../shared)")
    ap.add_argument("--anchor", default=None,
                    help="the simulation's 'now' (ISO-8601 UTC, within the last 24 hours); default: the run's UTC day")
    ap.add_argument("--keep", type=Path, default=None, help="keep Redis data and the workers' logs in this folder")
    ap.add_argument("--wave-deadline", type=float, default=300.0, help="seconds a wave may take to become idle")
    args = ap.parse_args()

    shared = find_shared(args.shared)
    corpus = shared / "corpus" / "extraction" / "scrapinghub"
    scorer = shared / "tools" / "extract_eval.py"
    if not (corpus / "truth.json").is_file() or not scorer.is_file():
        print(f"syndication: no extraction corpus and scorer under {shared} "
              "(corpus/extraction/scrapinghub/truth.json, tools/extract_eval.py); pass --shared DIR", file=sys.stderr)
        return 2
    now = time.time()
    if args.anchor:
        try:
            anchor = datetime.fromisoformat(args.anchor.replace("Z", "+00:00")).timestamp()
        except ValueError:
            print(f"syndication: --anchor {args.anchor!r} is not an ISO-8601 time", file=sys.stderr)
            return 2
        if not now - 86400 <= anchor <= now:
            print("syndication: --anchor must be within the last 24 hours (sitemap entries older than three days "
                  "are skipped, and pages dated in the future are refused)", file=sys.stderr)
            return 2
    else:
        anchor = now - now % 86400
    ev = load_scorer(scorer)
    world = build_world(load_corpus(corpus), args.seed, args.quick, anchor)

    def say(text: str) -> None:
        print(text, file=sys.stderr, flush=True)

    sites = Sites(world)
    run = run_wire(world, sites, args.interval, args.wave_deadline, args.keep, say)
    result = score(world, run.items, run.decisions, sites.url_keys(), ev)
    meta = {"seed": args.seed, "quick": args.quick, "anchor": datetime.fromtimestamp(anchor, UTC).isoformat(),
            "interval": args.interval, "seconds": round(run.seconds, 1), "requests": run.requests,
            "waves": run.waves, "fetches": run.fetches}
    if args.json:
        print(json.dumps({"meta": meta, **result}, indent=1, ensure_ascii=False, default=str))
    else:
        print(table(result, meta))
    if args.keep is None and run.work is not None and all(w["idle"] for w in run.waves):
        shutil.rmtree(run.work, ignore_errors=True)
    elif run.work is not None:
        say(f"syndication: Redis data and logs kept in {run.work}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
