"""Politeness end to end: two threaded fetch workers, a prefork process worker and beat
(real subprocesses) crawl the fault-injecting network of tests/support/faultnet.py with the
shipped settings (the sources choose their own rates and a 3 s discovery interval). Every
assertion is made from the sites' request log, the Redis counters and the worker logs.

Run with `-s` to see the measured figures.
"""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

import pytest
import redis
from prometheus_client import CollectorRegistry, generate_latest
from protego import Protego

from tests.support.cluster import Cluster
from tests.support.env import wire_env
from tests.support.faultnet import build_network
from tests.support.helpers import test_settings, wait_for
from tests.support.loopback import Request, SiteServer
from tests.support.paths import ROOT
from worker.keys import Keys, as_text
from worker.ops import status
from worker.ops.redis_server import RedisProcess
from worker.pipeline.deps import Deps
from worker.settings import Settings, parse_sources
from worker.urls import canonicalize

pytestmark = pytest.mark.slow

RATE = 10.0  # requests/second/host (news: 20, lowered to 10 by its Crawl-delay: 0.1)
INTERVAL = 3  # seconds between discoveries of each source
SHIPPED = Settings()  # the workers run with these: WIRE_BOT_WALL_PAUSE (600 s) outlasts the run
PAUSE_GRACE = 0.1  # a request already past its last pause check when the pause began may still land
DOCUMENTS = re.compile(r"^/$|^/robots\.txt$|\.xml$|^/latest/$")  # discovery documents, not pages


def _stats(client: redis.Redis, keys: Keys) -> dict[str, int]:
    return {as_text(k): int(float(v)) for k, v in client.hgetall(keys.stats()).items()}


def _terminal_events(log_dir: Path) -> dict[str, list[str]]:
    """URL -> terminal outcomes from the workers' JSON `page` and `dead-lettered` lines."""
    out: dict[str, list[str]] = defaultdict(list)
    for path in log_dir.glob("*.log"):
        for line in path.read_text(errors="replace").splitlines():
            if not line.startswith("{"):
                continue
            try:
                rec = json.loads(line)
            except ValueError:
                continue
            url = rec.get("url")
            if not url:
                continue
            if rec.get("event") == "dead-lettered":
                out[url].append(f"dead:{rec.get('reason')}")
            elif rec.get("event") == "page":
                outcome, reason = rec.get("outcome"), rec.get("reason")
                if rec.get("stage") == "process" or outcome in ("skipped", "not_modified"):
                    out[url].append(f"{outcome}:{reason}" if outcome == "skipped" else str(outcome))
    return out


def _parked(client: redis.Redis, keys: Keys) -> dict[str, float]:
    """URL -> not-before time of every parked fetch (a member holds one URL or a paused host's batch)."""
    out = {}
    for member, not_before in client.zrange(keys.parked(), 0, -1, withscores=True):
        candidate = json.loads(member)["candidate"]
        for c in candidate if isinstance(candidate, list) else [candidate]:
            out[c["url"]] = not_before
    return out


def _wall_pause(client: redis.Redis, keys: Keys, address: str) -> dict | None:
    """The bot-wall breaker's recorded pause of `address`, once it tripped."""
    return next((p for p in map(json.loads, client.lrange(keys.pauses(), 0, -1))
                 if p["host"] == address and p["reason"].startswith("bot_wall")), None)


def _max_in_window(times: list[float], window: float = 1.0) -> int:
    """Most requests in any half-open window [t, t + window) (t ranging over request times)."""
    times = sorted(times)
    best = j = 0
    for i, t in enumerate(times):
        while j < len(times) and times[j] < t + window:
            j += 1
        best = max(best, j - i)
    return best


def _metrics_text(deps: Deps) -> str:
    from worker.ops.serve import _Collector  # the /metrics renderer, in process

    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Collector(deps))  # type: ignore[arg-type]
    return generate_latest(registry).decode()


def test_crawler_is_polite_under_faults(redis_server: RedisProcess, prefix: str, tmp_path: Path) -> None:
    """No disallowed or paused fetch, per-host rate within +10%, conditional re-fetches, every URL accounted for."""
    server = SiteServer()
    net = build_network(server, rate=RATE, interval=f"{INTERVAL}s")
    url = f"redis://127.0.0.1:{redis_server.port}/15"
    client = redis.Redis.from_url(url)
    client.flushdb()
    keys = Keys.for_prefix(prefix)
    sources_path = tmp_path / "sources.yaml"
    sources_path.write_text(net.sources)
    config = parse_sources(net.sources, str(sources_path))
    deps = Deps.create(test_settings(url, prefix), config, client=client)
    env = wire_env(redis_url=url, key_prefix=prefix, sources=sources_path, allow_private_addresses="true",
                   log_format="json", data_dir=tmp_path / "data")
    logs = tmp_path / "logs"
    logs.mkdir()
    cluster = Cluster(env, logs)
    expected = {canonicalize(u): want for u, want in net.expected.items()}
    reingested = 0
    observed: dict[str, object] = {}
    started, run_began = time.monotonic(), time.time()
    walled = net.hosts["walled"]

    def accounted(extra_not_modified: int = 0) -> bool:
        """Every URL has its outcome; the only ones waiting are walled's, parked until its bot-wall pause ends
        (600 s: longer than the run)."""
        s = _stats(client, keys)
        outcomes = s.get("published", 0) + s.get("duplicates", 0) + s.get("skipped", 0) + s.get("not_modified", 0)
        dead = client.xlen(keys.dead_stream)
        parked = _parked(client, keys)
        queued = sum(status.queue_depths(client).values()) + client.hlen("unacked")
        discovered = set()
        for name in ("news", "home", "busy", "shy", "hostile", "walled", "down"):
            discovered |= {as_text(m) for m in client.zrange(keys.source_urls(name), 0, -1)}
        return (outcomes + dead + len(parked) == s.get("discovered", 0) + reingested and queued == 0
                and all(u.startswith(walled.base + "/") for u in parked)
                and set(expected) <= discovered and s.get("not_modified", 0) >= extra_not_modified)

    def watch_down() -> None:
        """While the `down` feed has only answered 500s, the source must show as never successful."""
        if "failing" in observed:
            return
        state = {as_text(k): as_text(v) for k, v in client.hgetall(keys.source_state("down")).items()}
        if int(state.get("errors", 0)) < 1:
            return
        doc = status.collect(client, keys, config, deps.settings)
        gauge = 'wire_source_last_success_timestamp_seconds{source="down"}' in _metrics_text(deps)
        if all(r.status == 500 for r in server.requests("down", "/feed.xml")):  # still failing after the reads
            down = next(s for s in doc["sources"] if s["name"] == "down")
            observed["failing"] = {"state": state, "stale": down["stale"], "gauge": gauge}

    try:
        cluster.start("fetch-a", "worker", "--queues", "discover,fetch", "--pool", "threads", "--concurrency", "4",
                      "--name", "fetch-a")
        cluster.start("fetch-b", "worker", "--queues", "discover,fetch", "--pool", "threads", "--concurrency", "4",
                      "--name", "fetch-b")
        cluster.start("process", "worker", "--queues", "process", "--pool", "prefork", "--concurrency", "2",
                      "--name", "process")
        cluster.start("beat", "beat")

        def phase1() -> bool:
            watch_down()
            return accounted() and _wall_pause(client, keys, walled.address) is not None

        # the slow drip sets the pace: three attempts cut at the 20 s deadline, each retried one
        # deadline after the last (about 100 s)
        wait_for(phase1, timeout=180, interval=0.2, what="every discovered URL to be accounted for")
        phase1_at = time.monotonic() - started

        # Phase 2: the sitemap moves the lastmod of six pages; an operator re-ingests a source.
        bump_at = time.time()
        net.bump_pages(120.0)
        done = subprocess.run([sys.executable, "-m", "worker.ops.cli", "reingest", "--source", "home"], env=env,
                              cwd=ROOT, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        reingested = int(re.search(r"(\d+) URL\(s\) enqueued", done.stdout)[1])  # type: ignore[index]

        def phase2() -> bool:
            bumped = all(any(r.time > bump_at for r in server.requests("news", p)) for p in net.page_paths)
            return bumped and accounted(extra_not_modified=len(net.page_paths) + reingested)

        wait_for(phase2, timeout=60, interval=0.2, what="re-fetches after the lastmod change and the re-ingest")
        ended = time.time()
        wall = _wall_pause(client, keys, walled.address)
        wall_ttl = client.pttl(keys.host_pause(walled.address)) / 1000
    except AssertionError:
        print(cluster.logs())
        raise
    finally:
        cluster.stop()
        server.stop()
    elapsed = time.monotonic() - started
    log = server.requests()
    figures: list[str] = [f"run: {elapsed:.0f}s (phase 1 settled at {phase1_at:.0f}s), {len(log)} requests logged"]

    # 1. robots.txt: no request to a disallowed path, none to the URLs that must never be fetched
    disallowed = []
    for host, body in net.disallow.items():
        rules = Protego.parse(body)
        base = net.hosts[host].base
        disallowed += [r for r in log if r.host == host and r.path != "/robots.txt"
                       and not rules.can_fetch(base + r.path, deps.settings.user_agent)]
    never = [r for r in log if (r.host, r.path) in set(net.never)]
    figures.append(f"disallowed-path requests: {len(disallowed)}; requests of never-to-fetch URLs "
                   f"(old sitemap entries, old monthly sitemap, disallowed): {len(never)}")

    # 2. paused hosts: robots.txt 503 (shy) and every pause recorded (Retry-After, bot-wall breaker)
    shy = server.requests("shy")
    robots_ok = min(r.time for r in shy if r.path == "/robots.txt" and r.status == 200)
    while_robots_down = [r for r in shy if r.path != "/robots.txt" and r.time < robots_ok]
    robots_503 = [r.time for r in shy if r.path == "/robots.txt" and r.status == 503]
    by_address = {h.address: name for name, h in net.hosts.items()}
    pauses = [json.loads(p) for p in client.lrange(keys.pauses(), 0, -1)]
    in_pause, in_flight = [], []
    for p in pauses:
        for r in server.requests(by_address[p["host"]]):
            if p["since"] + PAUSE_GRACE < r.time < p["until"]:
                in_pause.append((p, r))
            elif p["since"] < r.time <= p["since"] + PAUSE_GRACE:
                in_flight.append((p, r))
    figures.append(f"requests to a paused host: {len(while_robots_down)} while shy's robots.txt answered 503 "
                   f"({len(robots_503)}x, re-asked after {robots_ok - robots_503[0]:.1f}s); {len(in_pause)} during "
                   f"{len(pauses)} recorded pauses ({', '.join(sorted({p['reason'] for p in pauses}))}); "
                   f"{len(in_flight)} already in flight within {PAUSE_GRACE * 1000:.0f} ms of a pause starting")

    # 3. per-host rate in any one-second window, across both fetch workers
    rate_rows, over = [], []
    for name, rate in net.rates.items():
        times = [r.time for r in log if r.host == name]
        worst = _max_in_window(times)
        bound = math.floor(rate * 1.1)
        gaps = sorted(b - a for a, b in zip(sorted(times), sorted(times)[1:], strict=False))
        rate_rows.append(f"{name}={worst}/{bound} (n={len(times)}, min gap {gaps[0] * 1000:.0f} ms)" if gaps
                         else f"{name}={worst}/{bound}")
        if worst > bound:
            over.append(name)
    figures.append("max requests in any 1 s window / allowed floor(rate x 1.1): " + ", ".join(rate_rows))

    # 4. re-fetches: a request for a URL whose earlier 200 carried a validator should be conditional
    def conditional(r: Request) -> bool:
        return "If-None-Match" in r.headers or "If-Modified-Since" in r.headers

    validated: dict[tuple[str, str], bool] = {}
    refetch: dict[str, list[bool]] = {"pages": [], "documents": []}
    any_200: set[tuple[str, str]] = set()
    raw_refetch: list[bool] = []
    unconditional: list[str] = []
    for r in sorted(log, key=lambda r: r.time):
        key = (r.host, r.path)
        kind = "documents" if DOCUMENTS.search(r.path) else "pages"
        if r.path != "/robots.txt" and validated.get(key):
            refetch[kind].append(conditional(r))
        if kind == "pages" and key in any_200:
            raw_refetch.append(conditional(r))
            if not conditional(r):
                unconditional.append(f"{r.host}{r.path}")
        if r.status in (200, 304):
            any_200.add(key)
            validated[key] = validated.get(key, False) or r.validators
    pct = {k: 100.0 * sum(v) / len(v) if v else 100.0 for k, v in refetch.items()}
    raw_pct = 100.0 * sum(raw_refetch) / len(raw_refetch) if raw_refetch else 100.0
    figures.append(f"conditional re-fetches: pages {sum(refetch['pages'])}/{len(refetch['pages'])} "
                   f"({pct['pages']:.1f}%), feeds/sitemaps/home pages {sum(refetch['documents'])}/"
                   f"{len(refetch['documents'])} ({pct['documents']:.1f}%); any page re-requested after a 200: "
                   f"{sum(raw_refetch)}/{len(raw_refetch)} ({raw_pct:.1f}%; unconditional: {', '.join(unconditional) or 'none'})")

    # 5. every discovered URL accounted for
    s = _stats(client, keys)
    dead = [(as_text(f[b"url"]), as_text(f[b"reason"])) for _, f in client.xrange(keys.dead_stream)]
    discovered = set()
    for name in net.hosts:
        discovered |= {as_text(m) for m in client.zrange(keys.source_urls(name), 0, -1)}
    # a page is counted in Redis a moment before its worker writes the summary log line
    parked = _parked(client, keys)
    deadline = time.monotonic() + 15
    while True:
        events = _terminal_events(logs)
        for u in parked:
            events[u].append("parked")
        unaccounted = sorted(u for u in discovered if not events.get(u))
        if not unaccounted or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    wrong = {u: (want, events.get(u)) for u, want in expected.items()
             if not any(e in want.split("|") for e in events.get(u, []))}
    outcomes = s.get("published", 0) + s.get("duplicates", 0) + s.get("skipped", 0) + s.get("not_modified", 0)
    text = _metrics_text(deps)
    bot_walls = sum(float(m[1]) for m in re.finditer(
        r'wire_skipped_total\{[^}]*reason="bot_wall"[^}]*\} (\S+)', text))
    figures.append(
        f"URLs: {len(discovered)} distinct discovered; enqueued {s.get('discovered', 0)} by discovery + "
        f"{reingested} by reingest = {s.get('discovered', 0) + reingested}; published {s.get('published', 0)}, "
        f"duplicates {s.get('duplicates', 0)}, skipped {s.get('skipped', 0)}, not modified "
        f"{s.get('not_modified', 0)}, dead-lettered {len(dead)} ({', '.join(sorted({r for _, r in dead}))}), "
        f"parked {len(parked)} = {outcomes + len(dead) + len(parked)}; without a terminal outcome: {len(unaccounted)}; "
        f"not as expected: {len(wrong)}")
    figures.append(f"bot walls: {net.challenges_served()} challenges served, wire_skipped_total{{reason=bot_wall}} "
                   f"= {bot_walls:.0f}")
    assert wall is not None
    after_wall = [r for r in server.requests("walled") if r.time > wall["since"] + PAUSE_GRACE]
    parked_at = sorted(parked.values())
    figures.append(f"bot-wall pause of walled: {wall['until'] - wall['since']:.0f}s from +{wall['since'] - run_began:.0f}s, "
                   f"{ended - wall['since']:.0f}s of it within the run, its key's TTL {wall_ttl:.0f}s at the end; "
                   f"requests to walled meanwhile: {len(after_wall)}; {len(parked_at)} URLs parked until "
                   + (f"{parked_at[0] - wall['since']:.0f}-{parked_at[-1] - wall['since']:.0f}s after the trip"
                      if parked_at else "-"))
    failing = observed.get("failing")
    down_feed = [r.time for r in server.requests("down", "/feed.xml")]
    down_gaps = [b - a for a, b in zip(down_feed, down_feed[1:], strict=False)]
    figures.append(f"failing source: while its feed answered 500: {failing}; feed requested {len(down_feed)}x, "
                   f"gaps {', '.join(f'{g:.1f}s' for g in down_gaps[:4])}")
    print("\n  " + "\n  ".join(figures))

    assert disallowed == [] and never == []
    assert while_robots_down == [] and in_pause == [], (while_robots_down, in_pause)
    assert robots_ok - robots_503[0] >= 4.5  # the 503 paused the host (Retry-After 2, floor 5 s), no tight loop
    assert {p["reason"].split()[0] for p in pauses} >= {"retry-after", "bot_wall"}
    assert over == [], rate_rows
    assert pct["pages"] >= 95.0 and pct["documents"] >= 95.0 and len(refetch["pages"]) >= 12, refetch
    assert unaccounted == [] and wrong == {}, (unaccounted, wrong)
    assert outcomes + len(dead) + len(parked) == s["discovered"] + reingested
    # the breaker paused walled for the shipped WIRE_BOT_WALL_PAUSE: nothing reached it for the rest of the run,
    # its pause key still had the rest of the 600 s to go, and the URLs it had not served wait for the pause's end
    assert abs(wall["until"] - wall["since"] - SHIPPED.bot_wall_pause) < 0.01, wall
    assert after_wall == [], after_wall
    assert SHIPPED.bot_wall_pause - (ended - wall["since"]) - 2 <= wall_ttl <= SHIPPED.bot_wall_pause, wall_ttl
    assert parked and all(u.startswith(walled.base + "/") for u in parked), sorted(parked)
    assert all(t >= wall["until"] - 1 for t in parked.values()), (wall, sorted(parked.values()))
    assert discovered == set(expected), sorted(discovered ^ set(expected))
    assert bot_walls == net.challenges_served()
    assert isinstance(failing, dict) and "last_success" not in failing["state"] and failing["stale"] \
        and not failing["gauge"], failing
    assert 'wire_source_last_success_timestamp_seconds{source="down"}' in text
    assert len(down_feed) >= 4 and min(down_gaps) >= INTERVAL * 0.6, down_gaps
