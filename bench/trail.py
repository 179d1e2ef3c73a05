"""What the URL trail adds per page: client CPU, Redis CPU, Redis memory.

    python bench/trail.py [--pages 20000] [--batch 8] [--rounds 5]

A page's trail is written by three pipelines the stages execute anyway:
discovery's (a `discovered` event), the fetch hand-off's (a `fetch` event)
and the process stage's `finish_pages` (its outcome, and an alias when the
page names another canonical URL: a quarter of the pages here). Each adds
RPUSH + LTRIM + EXPIRE for the URL. This runs those same calls (worker.trail)
on pipelines of --batch pages, against a private Redis, twice per round:
with only the stats counter every such pipeline already carries (the
baseline), and with the trail writes added. The difference, per page, is
the trail's cost: CPU of this process (building the events, packing the
commands, reading the replies) and of redis-server, from /proc. The median
round is the figure. Memory: MEMORY USAGE of the trail and alias keys of a
page, averaged.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import redis  # noqa: E402

from worker.keys import Keys  # noqa: E402
from worker.ops.redis_server import start_redis  # noqa: E402
from worker.trail import Trail, event  # noqa: E402

CLK_SECONDS = 1.0 / 100


def server_cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) * CLK_SECONDS


def run(client: redis.Redis, keys: Keys, trail: Trail | None, pages: int, batch: int, offset: int) -> None:
    """The three stages' pipelines for `pages` URLs, `batch` pages per pipeline."""
    base = "https://news.example.com/2024/05/01/a-story-about-the-harbour-bridge-reopening-"
    for stage in ("discover", "fetch", "process"):
        for start in range(0, pages, batch):
            pipe = client.pipeline(transaction=False)
            pipe.hincrby(keys.stats(), stage, batch)  # what each pipeline carries anyway
            if trail is not None:
                now = time.time()
                for i in range(start, min(start + batch, pages)):
                    url = f"{base}{offset + i}.html"
                    if stage == "discover":
                        trail.add(pipe, url, event("discovered", now, source="example", doc="sitemap",
                                                   via="https://news.example.com/sitemap-news.xml",
                                                   lastmod="2024-05-01T10:00:00Z"))
                    elif stage == "fetch":
                        trail.add(pipe, url, event("fetch", now, n=1, status=200, bytes=183_211, ms=212))
                    else:
                        trail.add(pipe, url, event("published", now, story="3f2a9c0d1e2b4a5f", version=1,
                                                   event="new", canonical=url + "?amp" if i % 4 == 0 else None))
                        trail.alias(pipe, url + "?amp" if i % 4 == 0 else None, url)
            pipe.execute()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pages", type=int, default=20_000)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="wire-bench-trail-") as tmp:
        server = start_redis(Path(tmp), appendonly=False)
        try:
            client = redis.Redis.from_url(server.url)
            keys = Keys.for_prefix("bench")
            trail = Trail(keys, 14 * 86_400)
            pid = int(client.info("server")["process_id"])
            added_client, added_server = [], []
            for r in range(args.rounds):
                costs = {}
                for name, t in (("base", None), ("trail", trail)):
                    c0, s0 = time.process_time(), server_cpu(pid)
                    run(client, keys, t, args.pages, args.batch, offset=r * args.pages)
                    costs[name] = (time.process_time() - c0, server_cpu(pid) - s0)
                added_client.append((costs["trail"][0] - costs["base"][0]) / args.pages * 1e6)
                added_server.append((costs["trail"][1] - costs["base"][1]) / args.pages * 1e6)
                print(f"round {r + 1}: client +{added_client[-1]:.1f} us/page, redis +{added_server[-1]:.1f} us/page "
                      f"(baseline {costs['base'][0] / args.pages * 1e6:.1f} / {costs['base'][1] / args.pages * 1e6:.1f})")
            sample = [f"https://news.example.com/2024/05/01/a-story-about-the-harbour-bridge-reopening-{i}.html"
                      for i in range(0, 400)]
            memory = statistics.mean(int(client.memory_usage(keys.trail(u)) or 0) for u in sample)
            aliases = [k for k in client.scan_iter(match="bench:trail:alias:*", count=1000)][:400]
            alias_memory = statistics.mean(int(client.memory_usage(k) or 0) for k in aliases) if aliases else 0.0
            print(f"median added CPU per page: client {statistics.median(added_client):.1f} us, "
                  f"redis-server {statistics.median(added_server):.1f} us")
            print(f"Redis memory per page: trail of 3 events {memory:.0f} B; an alias {alias_memory:.0f} B "
                  f"(for the pages that have one)")
        finally:
            server.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
