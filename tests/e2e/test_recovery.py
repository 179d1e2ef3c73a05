"""Recovery by liveness, end to end with the shipped settings (visibility timeout 1,800 s, time limit 120 s):
real `wire run` and `wire worker` processes, a real Redis and loopback news sites.

Each test prints its recovery time: from the fault to the last story published (the stream entry's id is
Redis's clock in milliseconds, on this machine's clock as the fault's time)."""

from __future__ import annotations

import json
import os
import re
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from tests.support.cluster import Cluster
from tests.support.env import wire_env
from tests.support.helpers import descendants, http_get, wait_for
from tests.support.loopback import HTML, Site, SiteServer
from tests.support.run import Run
from tests.support.sites import jsonld_page, unique_story
from worker.keys import CONSUMER_TTL, Keys
from worker.metrics import counter_sum
from worker.ops.redis_server import free_port
from worker.queue.broker import OWNER_KEY
from worker.queue.liveness import REAP_EVERY

DB = 9  # a database of the session's Redis of our own, flushed by each test
pytestmark = pytest.mark.slow


# ----------------------------------------------------------------------------- sites and stories


def news_sites(server: SiteServer, count: int, per_site: int, *, delay: float, first: int = 40) -> list[Site]:
    """`count` news sites on 127.0.0.<first>..., each with a sitemap of `per_site` distinct stories served
    `delay` seconds late."""
    sites = []
    for k in range(count):
        site = server.add(f"wire{first + k}", f"127.0.0.{first + k}")
        site.routes["/robots.txt"] = (404, {}, "")
        paths = [f"/news/story-{i}.html" for i in range(per_site)]
        urls = "".join(f"<url><loc>{site.base}{p}</loc></url>" for p in paths)
        site.routes["/sitemap.xml"] = (200, {"Content-Type": "application/xml"},
                                       f'<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">{urls}</urlset>')
        for i, path in enumerate(paths):
            body = jsonld_page(unique_story((first + k) * 1000 + i), site.base)

            def slow(count: int, headers: dict, body: str = body) -> tuple[int, dict, str]:
                time.sleep(delay)
                return 200, HTML, body

            site.routes[path] = slow
        sites.append(site)
    return sites


def sources_yaml(sites: list[Site], rate: float) -> str:
    return "sources:\n" + "".join(f"- name: {s.name}\n  sitemaps: ['{s.base}/sitemap.xml']\n  interval: 1h\n"
                                  f"  rate: {rate}\n" for s in sites)


def story_urls(sites: list[Site], per_site: int) -> list[str]:
    return sorted(f"{s.base}/news/story-{i}.html" for s in sites for i in range(per_site))


def published(client: redis.Redis, keys: Keys) -> list[tuple[float, str]]:
    """(time published, canonical URL) of every entry in the items stream."""
    return [(int(eid.split(b"-")[0]) / 1000, json.loads(f[b"data"])["canonical_url"])
            for eid, f in client.xrange(keys.items_stream)]


def settled(client: redis.Redis) -> bool:
    """Nothing queued, nothing held: no copy of a story can still be on its way."""
    return client.hlen("unacked") == 0 and sum(client.llen(q) for q in ("discover", "fetch", "process")) == 0


def assert_each_once(client: redis.Redis, keys: Keys, urls: list[str]) -> list[tuple[float, str]]:
    wait_for(lambda: settled(client), timeout=60, what="queues and unacked to drain")
    time.sleep(2.0)  # a late second copy would show up by now
    items = published(client, keys)
    got = sorted(u for _, u in items)
    assert len(got) == len(set(got)), f"published twice: {[u for u in set(got) if got.count(u) > 1]}"
    assert got == urls, f"missing: {sorted(set(urls) - set(got))}"
    return items


def restored_lines(log: str) -> list[dict]:
    return [json.loads(line) for line in log.splitlines() if '"task restored"' in line and line.startswith("{")]


# ----------------------------------------------------------------------------- processes


@pytest.fixture
def db(redis_server) -> Iterator[tuple[str, redis.Redis]]:
    url = f"redis://127.0.0.1:{redis_server.port}/{DB}"
    client = redis.Redis.from_url(url)
    client.flushdb()
    yield url, client
    client.close()


def run_env(tmp_path: Path, sources: Path, prefix: str, name: str, redis_url: str | None = None,
            **extra: str) -> dict[str, str]:
    return wire_env(sources=sources, allow_private_addresses=1, key_prefix=prefix, data_dir=tmp_path / f"data-{name}",
                    metrics_host="127.0.0.1", metrics_port=free_port(), log_format="json", fetch_concurrency=4,
                    process_concurrency=2, redis_url=redis_url, **extra)



def worker_env(url: str, prefix: str, sources: Path, tmp_path: Path, **extra: str) -> dict[str, str]:
    """The environment of `wire worker` and `wire beat` processes started by a test (shipped defaults)."""
    return wire_env(redis_url=url, key_prefix=prefix, sources=sources, allow_private_addresses=1,
                    log_format="json", data_dir=tmp_path / "data", **extra)


def _started_fetches(client: redis.Redis, prefix: str, pid: int) -> int:
    """Fetch tasks the consumer `pid` holds and has started (their delivery is counted)."""
    count = 0
    for tag, owner in client.hgetall(OWNER_KEY).items():
        raw, record = client.get(owner), client.hget("unacked", tag)
        if not raw or not record or int(json.loads(raw)["pid"]) != pid:
            continue
        headers = json.loads(record)[0]["headers"]
        count += headers.get("task") == "wire.fetch" and bool(client.exists(f"{prefix}:attempts:{headers['id']}"))
    return count


def _owners_by_pid(client: redis.Redis) -> dict[int, int]:
    """Messages held, by the pid of the consumer named as their owner."""
    held: dict[int, int] = {}
    for owner in client.hvals(OWNER_KEY):
        raw = client.get(owner)
        if raw:
            pid = int(json.loads(raw)["pid"])
            held[pid] = held.get(pid, 0) + 1
    return held


# ----------------------------------------------------------------------------- the faults


def test_sigkilled_wire_run_tree_then_restart_publishes_every_story_once(tmp_path: Path, prefix: str, db) -> None:
    """The whole `wire run` tree SIGKILLed mid-batch (a container crash), then `wire run` started again on the
    same Redis: every story published within 60 s of the restart, none twice. Owners of unacked messages are
    only ever the workers (the prefork worker's parent, never one of its pool children)."""
    url, client = db
    keys = Keys.for_prefix(prefix)
    server = SiteServer()
    per_site = 10
    sites = news_sites(server, 6, per_site, delay=0.4)
    urls = story_urls(sites, per_site)
    sources = tmp_path / "sources.yaml"
    sources.write_text(sources_yaml(sites, rate=2))
    first = Run(run_env(tmp_path, sources, prefix, "first", url), tmp_path / "first.log")
    second: Run | None = None
    try:
        family = first.wait_consuming(client)
        workers = {p for p in family if _ppid(p) == first.proc.pid and "worker.ops.cli worker" in _cmdline(p)}
        owners: set[int] = set()

        def a_third_out() -> bool:
            owners.update(_owners_by_pid(client))
            return len(published(client, keys)) >= len(urls) // 3

        wait_for(a_third_out, timeout=90, interval=0.05, what="a third of the stories")
        held = client.hlen("unacked")
        killed_at = first.kill_tree()
        out_at_kill = len(published(client, keys))
        assert held > 0 and out_at_kill < len(urls), (held, out_at_kill)
        assert owners and owners <= workers, f"owners {owners}, worker processes {workers}"
        wait_for(lambda: not first.alive(), timeout=10, what="the killed tree to be gone")

        second = Run(run_env(tmp_path, sources, prefix, "second", url), tmp_path / "second.log")
        restarted_at = time.time()
        wait_for(lambda: len(published(client, keys)) >= len(urls), timeout=60,
                 what=f"every story within 60 s of the restart\n{second.output()[-3000:]}")
        items = assert_each_once(client, keys, urls)
        last = max(t for t, _ in items)
        restored = restored_lines(second.output())
        assert restored and {r["reason"] for r in restored} == {"heartbeat_expired"}
        print(f"killed with {out_at_kill}/{len(urls)} out and {held} unacked; restart +{restarted_at - killed_at:.1f}s; "
              f"last story {last - killed_at:.1f}s after the kill, {last - restarted_at:.1f}s after the restart; "
              f"{len(restored)} messages restored")
        assert last - restarted_at <= 60
    finally:
        first.stop()
        if second is not None:
            second.stop()
        server.stop()


def test_survivor_of_two_wire_runs_publishes_every_story_once(tmp_path: Path, prefix: str, db) -> None:
    """Two `wire run` on one Redis; the one holding more messages is SIGKILLed (its whole tree) and never
    restarted: the survivor publishes every story within 60 s of the kill, none twice."""
    url, client = db
    keys = Keys.for_prefix(prefix)
    server = SiteServer()
    per_site = 10
    sites = news_sites(server, 6, per_site, delay=0.4, first=50)
    urls = story_urls(sites, per_site)
    sources = tmp_path / "sources.yaml"
    sources.write_text(sources_yaml(sites, rate=2))
    runs = [Run(run_env(tmp_path, sources, prefix, name, url), tmp_path / f"{name}.log") for name in ("a", "b")]
    try:
        for run in runs:
            run.wait_consuming(client)

        def victim() -> Run | None:  # mid-batch: a quarter out, and the run to kill holds fetches it started
            if len(published(client, keys)) < len(urls) // 4:
                return None
            started = [sum(_started_fetches(client, prefix, pid) for pid in run.family) for run in runs]
            return runs[started.index(max(started))] if max(started) >= 2 else None

        doomed = wait_for(victim, timeout=90, interval=0.05, what="a run holding fetches it started")
        survivor = runs[1 - runs.index(doomed)]
        held = sum(n for pid, n in _owners_by_pid(client).items() if pid in doomed.family)
        killed_at = doomed.kill_tree()
        out_at_kill = len(published(client, keys))
        assert out_at_kill < len(urls)
        wait_for(lambda: len(published(client, keys)) >= len(urls), timeout=60,
                 what=f"every story within 60 s of the kill\n{survivor.output()[-3000:]}")
        items = assert_each_once(client, keys, urls)
        last = max(t for t, _ in items)
        restored = restored_lines(survivor.output())
        assert restored and {r["reason"] for r in restored} == {"heartbeat_expired"}
        print(f"killed a run holding {held} messages with {out_at_kill}/{len(urls)} out; last story "
              f"{last - killed_at:.1f}s after the kill; {len(restored)} messages restored by the survivor")
        assert last - killed_at <= 60
    finally:
        for run in runs:
            run.stop()
        server.stop()


def test_sigkilled_wire_run_alone_leaves_no_process_and_a_restart_takes_over(tmp_path: Path, prefix: str) -> None:
    """SIGKILL of `wire run` only (the OOM killer's pick), with its embedded Redis and a prefork worker: within
    10 s no process of that run is left (children by their parent-death signal, the pool's children by
    Celery's), and `wire run` started again on the same data folder binds the same port and serves."""
    server = SiteServer()
    sites = news_sites(server, 2, 6, delay=0.5, first=60)
    sources = tmp_path / "sources.yaml"
    sources.write_text(sources_yaml(sites, rate=2))
    env = run_env(tmp_path, sources, prefix, "embedded")
    first = Run(env, tmp_path / "first.log")
    second: Run | None = None
    try:
        match = wait_for(lambda: re.search(r"embedded Redis on (redis://\S+)", first.output()), timeout=30,
                         what="the embedded Redis")
        client = redis.Redis.from_url(match.group(1))
        first.wait_consuming(client)
        wait_for(lambda: client.xlen(Keys.for_prefix(prefix).items_stream) >= 1, timeout=60, what="a first story")
        family = descendants(first.proc.pid)
        kinds = {_cmdline(p).split(" -m worker.ops.cli ")[-1].split(" ")[0] for p in family}
        assert {"worker", "beat", "serve"} <= kinds and any("redis-server" in _cmdline(p) for p in family), kinds
        pool = [p for p in family if "worker.ops.cli worker" in _cmdline(p) and
                "worker.ops.cli worker" in _cmdline(_ppid(p))]
        assert pool, "no prefork pool child seen"
        killed_at = time.monotonic()
        os.kill(first.proc.pid, signal.SIGKILL)
        first.proc.wait(10)
        first.family = family
        wait_for(lambda: not first.alive(), timeout=10,
                 what=f"every process of the run to be gone: {[(p, _cmdline(p)) for p in first.alive()]}")
        gone_after = time.monotonic() - killed_at
        second = Run(env, tmp_path / "second.log")
        port = env["WIRE_METRICS_PORT"]
        wait_for(lambda: http_get(f"http://127.0.0.1:{port}/healthz")[0] == 200, timeout=60,
                 what=f"the restarted run to serve\n{second.output()[-3000:]}")
        print(f"{len(family)} processes (incl. {len(pool)} pool children) gone {gone_after:.2f}s after the kill")
    finally:
        first.stop()
        if second is not None:
            second.stop()
        server.stop()


def test_sigstopped_fetch_worker_for_60s_publishes_nothing_twice(tmp_path: Path, prefix: str, db) -> None:
    """A fetch worker frozen (SIGSTOP) for 60 s while another runs: the other takes over its messages once its
    heartbeat expired; woken (SIGCONT), the frozen one finishes what it held, its acks are no-ops and what it
    publishes again is a duplicate: every story once."""

    url, client = db
    keys = Keys.for_prefix(prefix)
    server = SiteServer()
    per_site = 8
    sites = news_sites(server, 4, per_site, delay=0.5, first=70)
    urls = story_urls(sites, per_site)
    sources = tmp_path / "sources.yaml"
    sources.write_text(sources_yaml(sites, rate=2))
    cluster = Cluster(worker_env(url, prefix, sources, tmp_path, WIRE_FETCH_BATCH="4"), tmp_path)
    try:
        frozen = cluster.start("fetch-a", "worker", "--queues", "discover,fetch", "--pool", "threads",
                               "--concurrency", "4", "--name", "fetch-a")
        cluster.start("fetch-b", "worker", "--queues", "discover,fetch", "--pool", "threads", "--concurrency", "4",
                      "--name", "fetch-b")
        cluster.start("process", "worker", "--queues", "process", "--pool", "threads", "--concurrency", "2")
        cluster.wait(lambda: len(Run.consumer_pids(client)) >= 3, timeout=60, what="three consumers")
        cluster.start("beat", "beat")
        cluster.wait(lambda: _started_fetches(client, prefix, frozen.pid) >= 2, timeout=60,
                     what="the fetch worker to be fetching batches")
        held = _owners_by_pid(client)[frozen.pid]
        os.killpg(frozen.pid, signal.SIGSTOP)
        stopped_at = time.time()
        out_at_stop = len(published(client, keys))
        try:
            cluster.wait(lambda: len(published(client, keys)) >= len(urls), timeout=58,
                         what="the other workers to publish everything while it is frozen")
            all_out = max(t for t, _ in published(client, keys))
            time.sleep(max(0.0, stopped_at + 60 - time.time()))
        finally:
            os.killpg(frozen.pid, signal.SIGCONT)
        woke_at = time.time()
        cluster.wait(lambda: "heartbeat lapsed" in (tmp_path / "fetch-a.log").read_text(errors="replace"),
                     timeout=30, what="the woken worker to notice its heartbeat lapsed")
        items = assert_each_once(client, keys, urls)
        restored = restored_lines((tmp_path / "fetch-b.log").read_text(errors="replace") +
                                  (tmp_path / "process.log").read_text(errors="replace"))
        assert restored and {r["reason"] for r in restored} == {"heartbeat_expired"}
        duplicates = counter_sum(client, keys.metrics(), "wire_duplicates_total")
        print(f"froze a worker holding {held} messages with {out_at_stop}/{len(urls)} out; every story out "
              f"{all_out - stopped_at:.1f}s after the SIGSTOP; woken at +{woke_at - stopped_at:.0f}s; "
              f"{len(restored)} messages restored; {duplicates:.0f} duplicates dropped; {len(items)} published")
    finally:
        cluster.stop()
        server.stop()


def test_paced_host_batch_is_never_restored_while_its_worker_lives(tmp_path: Path, prefix: str, db) -> None:
    """A host paced at one request per 20 s (and slow to answer: 8 s) with 10 pages queued in one batch, two
    fetch workers, watched until the whole batch is out (about 210 s): each message is held for the host's
    next slot and the answer, past a heartbeat's TTL and the next reap, and none is ever restored; each
    page is requested once, 20 s apart, and published once."""
    from worker.models import Candidate
    from worker.queue import batches
    from worker.queue.app import create_app
    from worker.settings import Settings, load_sources

    url, client = db
    keys = Keys.for_prefix(prefix)
    server = SiteServer()
    (site,) = news_sites(server, 1, 10, delay=8.0, first=80)
    sources = tmp_path / "sources.yaml"
    sources.write_text(sources_yaml([site], rate=0.05))
    env = worker_env(url, prefix, sources, tmp_path)
    cluster = Cluster(env, tmp_path)
    try:
        for name in ("fetch-a", "fetch-b"):
            cluster.start(name, "worker", "--queues", "fetch", "--pool", "threads", "--concurrency", "2",
                          "--name", name)
        cluster.start("process", "worker", "--queues", "process", "--pool", "threads", "--concurrency", "2")
        cluster.wait(lambda: len(Run.consumer_pids(client)) >= 3, timeout=60, what="three consumers")
        create_app(Settings.from_env(env), load_sources(sources))
        batches.enqueue_fetch([Candidate(url=u, source=site.name).to_json() for u in story_urls([site], 10)])
        longest = 0.0
        deadline = time.monotonic() + 10 * 20 + 60  # robots.txt, then ten pages at the host's pace, and margin
        while time.monotonic() < deadline and client.xlen(keys.items_stream) < 10:
            taken = client.zrange("unacked_index", 0, 0, withscores=True)
            if taken:
                longest = max(longest, time.time() - taken[0][1])
            time.sleep(0.5)
        pages = [r for r in server.requests(site.name) if r.path.startswith("/news/")]
        logs = "".join(p.read_text(errors="replace") for p in tmp_path.glob("*.log"))
        assert not restored_lines(logs), restored_lines(logs)
        assert counter_sum(client, keys.metrics(), "wire_tasks_recovered_total") == 0
        paths = [r.path for r in pages]
        assert len(paths) == len(set(paths)) == 10, paths
        gaps = [b.time - a.time for a, b in zip(pages, pages[1:], strict=False)]
        assert all(g >= 19.0 for g in gaps), gaps
        assert longest > CONSUMER_TTL + REAP_EVERY, f"no message was held past the reap window: {longest:.1f}s"
        time.sleep(2.0)  # a restored message published again would show up by now
        assert client.xlen(keys.items_stream) == 10
        print(f"{len(paths)} pages fetched, gaps {[round(g, 1) for g in gaps]} s; a message held up to "
              f"{longest:.1f}s; none restored")
    finally:
        cluster.stop()
        server.stop()


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def _ppid(pid: int) -> int:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return 0
