"""Cost of one dedup decision (fingerprint + Redis lookup + record) as the index grows.

    python bench/dedup.py [--levels 10000,100000,1000000] [--sample 1000] [--filler FILE]

Starts its own redis-server (never the one on 6379), bulk-loads non-duplicate
filler stories (`dupbench.py filler`) with the same record code the commit
uses, and at each level times `Dedup.submit` on a sample of documents not yet
stored (half fresh filler, half re-submissions of stored stories with a
changed headline and an appended credit line, i.e. near-duplicates).
Memory per story is the INFO used_memory delta over the loaded stories.
Prints a markdown table.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import redis

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from worker.dedup import Dedup, Doc  # noqa: E402
from worker.redis_server import start_redis  # noqa: E402

DUPBENCH = Path(__file__).resolve().parents[2] / "shared" / "tools" / "dupbench.py"


def docs(path: Path) -> Iterator[Doc]:
    with path.open(encoding="utf-8") as f:
        for line in f:
            rec = json.loads(line)
            yield Doc(rec["url"], rec.get("title"), rec["body"], rec.get("published"))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--levels", default="10000,100000,1000000")
    ap.add_argument("--sample", type=int, default=1000)
    ap.add_argument(
        "--filler", type=Path, default=None, help="filler JSONL (default: generate with dupbench)"
    )
    ap.add_argument("--batch", type=int, default=2000)
    args = ap.parse_args()
    levels = [int(x) for x in args.levels.split(",")]
    need = max(levels) + args.sample * len(levels)
    tmp = Path(tempfile.mkdtemp(prefix="wire-bench-"))
    filler = args.filler
    if filler is None:
        filler = tmp / "filler.jsonl"
        subprocess.run(
            [sys.executable, str(DUPBENCH), "filler", "--out", str(filler), "--n", str(need)], check=True
        )
    server = start_redis(tmp / "redis", appendonly=False)
    try:
        r = redis.Redis.from_url(server.url)
        dd = Dedup(r, "bench:dedup")
        stream = "bench:items"

        def publish(d: object) -> list[tuple[str, dict[str, str]]]:
            return [(stream, {"event": "x"})]

        source = docs(filler)
        loaded: list[Doc] = []
        stored = 0
        base_mem = int(r.info("memory")["used_memory"])
        load_seconds = 0.0
        rows = []
        for level in levels:
            t0 = time.perf_counter()
            while stored < level:
                batch = [next(source) for _ in range(min(args.batch, level - stored))]
                dd.load(batch, now=time.time())
                stored += len(batch)
                if len(loaded) < 20_000:
                    loaded.extend(batch[::4])
            load_seconds += time.perf_counter() - t0
            mem = int(r.info("memory")["used_memory"]) - base_mem
            per_story = mem / stored
            fresh = [next(source) for _ in range(args.sample // 2)]
            rng = np.random.default_rng(level)
            near = []
            for i in rng.choice(len(loaded), args.sample - len(fresh), replace=False):
                d = loaded[int(i)]
                body = d.body + "\n\nAssociated Press writer Jane Doe contributed to this report."
                near.append(Doc(d.url.replace("https://", "https://mirror."), f"{d.title} | Mirror", body))
            sample = [x for pair in zip(fresh, near, strict=False) for x in pair]
            lat = []
            events: dict[str, int] = {}
            t_all = time.perf_counter()
            for doc in sample:
                t = time.perf_counter()
                dec = dd.submit(doc, now=time.time(), publish=publish)
                lat.append(time.perf_counter() - t)
                events[dec.event] = events.get(dec.event, 0) + 1
            wall = time.perf_counter() - t_all
            ms = np.array(lat) * 1000
            rows.append(
                (level, np.percentile(ms, 50), np.percentile(ms, 99), len(sample) / wall, per_story, events)
            )
            stored += sum(1 for _ in fresh)  # fresh sample docs are stored now too
            print(f"# level {level}: loaded in {load_seconds:.0f}s so far; events {events}", file=sys.stderr)
        print(
            "| stored stories | p50 ms | p99 ms | decisions/s (1 process) | Redis bytes/story | sample events |"
        )
        print("|---:|---:|---:|---:|---:|---|")
        for level, p50, p99, rate, per, ev in rows:
            evs = ", ".join(f"{k} {v}" for k, v in sorted(ev.items()))
            print(f"| {level:,} | {p50:.2f} | {p99:.2f} | {rate:,.0f} | {per:,.0f} | {evs} |")
        print(f"\np50 ratio largest/smallest level: {rows[-1][1] / rows[0][1]:.2f}")
    finally:
        server.stop()


if __name__ == "__main__":
    main()
