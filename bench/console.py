"""Time every console page over HTTP with 10,000 stories and 1,000 dead letters in Redis.

    python bench/console.py [--stories 10000] [--dead 1000] [--sources 30] [--runs 30]

Starts its own redis-server (never the one on 6379) and a `wire serve` on a
free loopback port in this process. Loads N stories through `Dedup.load`
(the records a `new` decision writes) plus one items-stream entry each
(the pipeline's `stream_fields`, ~350-word bodies), one duplicate copy per
50 stories through `Dedup.submit` (so story pages have copies), D dead
letters, S sources with state, host pauses and metrics, and activity
snapshots. Then GETs each page --runs times (after one warm-up request) and
prints the median, p95 and max wall time per page, logged in as admin (the
heaviest view: action forms rendered). Prints a markdown table.
"""

from __future__ import annotations

import argparse
import http.client
import random
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import urlencode

import redis

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from worker.console import activity  # noqa: E402
from worker.dedup import Doc  # noqa: E402
from worker.dedup.engine import load_row  # noqa: E402
from worker.metrics import MetricsBatch  # noqa: E402
from worker.ops.redis_server import start_redis  # noqa: E402
from worker.ops.serve import serve  # noqa: E402
from worker.pipeline.deps import Deps  # noqa: E402
from worker.publish import dead_letter, stream_fields  # noqa: E402
from worker.settings import Settings, parse_sources  # noqa: E402

WORDS = ["harbour", "strike", "minister", "talks", "union", "wages", "port", "ships", "cargo", "delay",
         "government", "said", "on", "tuesday", "officials", "expected", "agreement", "week", "resumed",
         "after", "overnight", "session"]


def body(rng: random.Random, n: int = 350) -> str:
    words = [rng.choice(WORDS) for _ in range(n)]
    return "\n".join(" ".join(words[i:i + 50]) + "." for i in range(0, n, 50))


def item(i: int, url: str, source: str, text: str, story_id: str) -> dict[str, object]:
    return {"schema_version": 1, "id": f"id{i}", "event": "new", "story_id": story_id, "version": 1,
            "url": url, "canonical_url": url, "source": source, "title": f"Story {i}: harbour strike <day {i % 7}>",
            "authors": ["A. Writer"], "agency": "AP", "dateline": "LONDON", "published_at": "2024-05-01T10:00:00Z",
            "modified_at": None, "language": "en", "body": text, "word_count": len(text.split()),
            "content_hash": "h", "fetched_at": "2024-05-01T10:01:00Z"}


def seed(deps: Deps, stories: int, dead: int, n_sources: int, now: float) -> None:
    rng = random.Random(7)
    r = deps.redis
    names = [s.name for s in deps.sources.sources]
    docs = [Doc(f"https://{names[i % len(names)]}.example.com/news/{i}", f"Story {i}", body(rng))
            for i in range(stories)]
    rows = [load_row(d, now) for d in docs]
    pipe = r.pipeline(transaction=False)
    for i, (d, row) in enumerate(zip(docs, rows, strict=True)):
        fields = stream_fields(item(i, d.url, names[i % len(names)], d.body, row.story_id))
        pipe.xadd(deps.keys.items_stream, fields)  # type: ignore[arg-type]
        if i % 1000 == 999:
            pipe.execute()
    pipe.execute()
    for start in range(0, len(rows), 1000):
        deps.dedup.store.load(rows[start:start + 1000])
    for d in docs[::50]:  # copies at another URL, recorded as duplicates
        deps.dedup.submit(Doc(d.url.replace("/news/", "/copy/"), d.title, d.body), now=now)
    for i in range(dead):
        dead_letter(r, deps.keys, stage="fetch" if i % 3 else "process", reason="timeout",
                    error="ReadTimeout: " + "x" * 200, url=f"https://{names[i % len(names)]}.example.com/d/{i}",
                    source=names[i % len(names)], payload={"url": f"https://x.example.com/d/{i}"}, attempts=3)
    for j, name in enumerate(names):
        r.hset(deps.keys.source_state(name), mapping={"last_discovery": now - 60, "last_success": now - 60 * j})
        if j % 5 == 0:
            r.set(deps.keys.host_pause(f"{name}.example.com"), "robots_unavailable", px=300_000)
    batch = MetricsBatch()
    for name in names:
        for status in ("200", "304", "404", "503", "timeout"):
            batch.inc("wire_pages_fetched_total", 100, source=name, status=status)
        batch.inc("wire_items_published_total", 50, source=name, event="new")
        batch.inc("wire_duplicates_total", 5, source=name, kind="near")
        batch.inc("wire_extract_failures_total", 2, source=name, reason="empty")
        batch.observe("wire_fetch_seconds", 0.2, source=name)
    batch.flush(r, deps.keys.metrics())
    for m in range(60, 0, -1):  # an hour of snapshots, as a long-running `wire serve` leaves
        activity.snapshot(r, deps.keys.prefix, deps.keys.metrics(), now - 60 * m)


def get(port: int, path: str, cookie: str = "") -> tuple[int, float, int]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    t0 = time.perf_counter()
    conn.request("GET", path, headers={"Cookie": cookie} if cookie else {})
    resp = conn.getresponse()
    size = len(resp.read())
    elapsed = time.perf_counter() - t0
    conn.close()
    return resp.status, elapsed, size


def login(port: int, token: str) -> str:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request("GET", "/login")
    resp = conn.getresponse()
    page = resp.read().decode()
    login_cookie = (resp.getheader("Set-Cookie") or "").split(";", 1)[0]
    csrf = page.split('name=csrf value="', 1)[1].split('"', 1)[0]
    conn.request("POST", "/login", body=urlencode({"csrf": csrf, "token": token}),
                 headers={"Content-Type": "application/x-www-form-urlencoded", "Cookie": login_cookie})
    resp = conn.getresponse()
    resp.read()
    cookies = [v for k, v in resp.getheaders() if k.lower() == "set-cookie" and v.startswith("wire_session=")]
    conn.close()
    return cookies[0].split(";", 1)[0]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--stories", type=int, default=10_000)
    ap.add_argument("--dead", type=int, default=1000)
    ap.add_argument("--sources", type=int, default=30)
    ap.add_argument("--runs", type=int, default=30)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="wire-console-bench-") as tmp:
        server = start_redis(Path(tmp), appendonly=False)
        client = redis.Redis.from_url(server.url)
        try:
            yaml = "sources:\n" + "".join(f"- name: src{i}\n  feeds: [https://src{i}.example.com/feed]\n"
                                          f"  interval: 5m\n" for i in range(args.sources))
            settings = Settings.from_env({"WIRE_REDIS_URL": server.url, "WIRE_KEY_PREFIX": "bench",
                                          "WIRE_ADMIN_TOKEN": "bench-token-0123456789abcdef012345"})
            deps = Deps.create(settings, parse_sources(yaml, "bench.yaml"), client=client)
            t0 = time.perf_counter()
            seed(deps, args.stories, args.dead, args.sources, time.time())
            print(f"seeded {client.xlen(deps.keys.items_stream)} stream entries, "
                  f"{client.xlen(deps.keys.dead_stream)} dead letters, {args.sources} sources "
                  f"in {time.perf_counter() - t0:.1f}s; redis used_memory "
                  f"{int(client.info('memory')['used_memory']) / 2**20:.0f} MiB\n")
            httpd = serve(deps, "127.0.0.1", 0, lambda c, f: None, lambda s: None, lambda s, p: None)
            threading.Thread(target=httpd.serve_forever, daemon=True).start()
            port = int(httpd.server_address[1])
            cookie = login(port, "bench-token-0123456789abcdef012345")
            entries = client.xrange(deps.keys.items_stream, count=args.stories)
            copied = entries[0][0].decode()  # story 0 has a recorded copy
            last_dead = client.xrange(deps.keys.dead_stream, count=100)[-1][0].decode()
            pages = ["/", "/queues", "/stories", f"/story/{copied}", "/dead", f"/dead?after={last_dead}",
                     "/reingest", "/dead/purge"]
            print("| page | median ms | p95 ms | max ms | bytes |")
            print("|---|---:|---:|---:|---:|")
            for path in pages:
                status, _, _ = get(port, path, cookie)
                assert status == 200, (path, status)
                times = []
                size = 0
                for _ in range(args.runs):
                    _, elapsed, size = get(port, path, cookie)
                    times.append(elapsed * 1000)
                times.sort()
                p95 = times[min(len(times) - 1, int(len(times) * 0.95))]
                label = path if len(path) < 30 else path[:27] + "..."
                print(f"| `{label}` | {statistics.median(times):.1f} | {p95:.1f} | {times[-1]:.1f} | {size} |")
            httpd.shutdown()
            httpd.server_close()
        finally:
            client.close()
            server.stop()


if __name__ == "__main__":
    main()
