"""Cost of one dedup decision (fingerprint + Redis lookup + record) as the index grows.

    python bench/dedup.py [--levels 10000,100000,1000000] [--sample 1000] [--runs 3]
                          [--filler FILE] [--workers 2] [--pin]

Starts its own redis-server (never the one on 6379) and bulk-loads
non-duplicate filler stories (`dupbench.py filler`; generated unless --filler
names a file) through `Dedup.load`, which writes the structures a `new`
decision writes. Rows are prepared (JSON parse, fingerprint, record) in
--workers processes and written in pipelines. At each level it times
`Dedup.submit` --runs times on a sample of documents not yet stored (half
fresh filler, half copies of stored stories at another URL with a changed
headline and an appended credit line, i.e. near duplicates), each submission
publishing to a stream as the pipeline does, and reports the median run.
Each run is followed by one on a second sample of the same make-up through
`Dedup.submit_many` in chunks of 64 (as `wire dedup replay` sends them: one
round trip per decision, the next document fingerprinted while Redis runs
the scripts), whose rate is the "streamed" column.
Memory per story is the INFO used_memory delta over the stored stories,
taken before the timed runs. Prints a markdown table.

--pin runs the timed process on one CPU and redis-server on another
(sched_setaffinity), as a worker and its Redis would be. Unpinned, the
scheduler sometimes puts both on one CPU and sometimes not, and that alone
moved a level's p50 by up to 0.15 ms on a 2-core machine (a Redis round
trip of ~25 vs ~110 us), so the ratio between levels measured minutes apart
varied from run to run (1.21 to 1.36 on the same code).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from multiprocessing import Pool
from pathlib import Path

import numpy as np
import redis

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from worker.dedup import Decision, Dedup, Doc  # noqa: E402
from worker.dedup.engine import load_row  # noqa: E402
from worker.dedup.store import LoadRow  # noqa: E402
from worker.ops.redis_server import start_redis  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
# ../shared beside the checkout (or beside the folder of worktrees)
SHARED = next((p / "shared" for p in ROOT.parents if (p / "shared" / "tools").is_dir()), ROOT.parent / "shared")
DUPBENCH = SHARED / "tools" / "dupbench.py"
CREDIT = "\n\nAssociated Press writer Jane Doe contributed to this report."


def to_doc(line: str) -> Doc:
    rec = json.loads(line)
    return Doc(rec["url"], rec.get("title"), rec["body"], rec.get("published"))


def rows_of(lines: list[str]) -> list[LoadRow]:
    now = time.time()
    return [load_row(to_doc(x), now) for x in lines]


def chunks(f: Iterator[str], size: int, total: int) -> Iterator[list[str]]:
    left = total
    while left > 0:
        chunk = [next(f) for _ in range(min(size, left))]
        left -= len(chunk)
        yield chunk


def publish(d: Decision) -> list[tuple[str, dict[str, str]]]:
    return [("bench:items", {"event": d.event, "story_id": d.story_id, "version": str(d.version)})]


def timed_run(dd: Dedup, sample: list[Doc]) -> tuple[float, float, float, dict[str, int]]:
    lat = np.empty(len(sample))
    events: dict[str, int] = {}
    t_all = time.perf_counter()
    for i, doc in enumerate(sample):
        t = time.perf_counter()
        d = dd.submit(doc, now=time.time(), publish=publish, maxlen=10_000)
        lat[i] = time.perf_counter() - t
        events[d.event] = events.get(d.event, 0) + 1
    wall = time.perf_counter() - t_all
    ms = lat * 1000
    return float(np.percentile(ms, 50)), float(np.percentile(ms, 99)), len(sample) / wall, events


def streamed_run(dd: Dedup, sample: list[Doc], chunk: int = 64) -> float:
    """Decisions per second through submit_many, `chunk` documents per call."""
    t_all = time.perf_counter()
    for i in range(0, len(sample), chunk):
        dd.submit_many(sample[i : i + chunk], now=time.time(), publish=publish, maxlen=10_000)
    return len(sample) / (time.perf_counter() - t_all)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--levels", default="10000,100000,1000000")
    ap.add_argument("--sample", type=int, default=1000, help="documents per timed run")
    ap.add_argument("--runs", type=int, default=3, help="timed runs per level (the median run is reported)")
    ap.add_argument("--filler", type=Path, default=None, help="filler JSONL (default: generate with dupbench)")
    ap.add_argument("--batch", type=int, default=2000)
    ap.add_argument("--workers", type=int, default=2, help="processes preparing rows for the bulk load")
    ap.add_argument("--pin", action="store_true", help="this process on one CPU, redis-server on another")
    args = ap.parse_args()
    levels = [int(x) for x in args.levels.split(",")]
    fresh_n = args.sample // 2
    need = max(levels) + 2 * fresh_n * args.runs * len(levels)
    tmp = Path(tempfile.mkdtemp(prefix="wire-bench-"))
    filler = args.filler
    if filler is None:
        filler = tmp / "filler.jsonl"
        cmd = [sys.executable, str(DUPBENCH), "filler", "--out", str(filler), "--n", str(need)]
        subprocess.run(cmd, check=True)
    server = start_redis(tmp / "redis", appendonly=False)
    rows_out = []
    try:
        r = redis.Redis.from_url(server.url)
        dd = Dedup(r, "bench:dedup")
        f = filler.open(encoding="utf-8")
        # raw lines of stored stories (the first level loads the file's head), for near-duplicate copies
        kept = _head(filler, min(2000, levels[0]))
        stored = 0
        load_s = 0.0
        base_mem = int(r.info("memory")["used_memory"])
        with Pool(args.workers) as pool:
            if args.pin:  # after the pool started: its workers keep every CPU for the bulk load
                _pin(server.process.pid)
            for level in levels:
                t0 = time.perf_counter()
                for rows in pool.imap(rows_of, chunks(f, args.batch, level - stored)):
                    dd.store.load(rows)
                    stored += len(rows)
                load_s += time.perf_counter() - t0
                per_story = (int(r.info("memory")["used_memory"]) - base_mem) / stored
                runs = []
                rng = np.random.default_rng(level)
                streamed = []
                for _ in range(args.runs):
                    one, many = (_sample(f, kept, rng, fresh_n, args.sample) for _ in range(2))
                    runs.append(timed_run(dd, one))
                    streamed.append(streamed_run(dd, many))
                    stored += 2 * fresh_n  # fresh sample documents are stored stories now
                runs.sort(key=lambda x: x[0])
                p50, p99, rate, ev = runs[len(runs) // 2]
                rows_out.append(
                    (
                        level,
                        p50,
                        statistics.median(x[1] for x in runs),
                        statistics.median(x[2] for x in runs),
                        per_story,
                        ev,
                        statistics.median(streamed),
                        [round(x[0], 2) for x in runs],
                        [round(x[1], 2) for x in runs],
                    )
                )
                print(
                    f"# level {level:,}: loaded {stored:,} in {load_s:.0f}s ({stored / load_s:,.0f}/s); "
                    f"p50 runs {rows_out[-1][7]} p99 runs {rows_out[-1][8]}; "
                    f"streamed/s runs {[round(x) for x in streamed]}; events {ev}",
                    file=sys.stderr,
                    flush=True,
                )
        print(
            "| stored stories | p50 ms | p99 ms | decisions/s, one at a time | decisions/s, streamed "
            "| Redis bytes/story | sample events |"
        )
        print("|---:|---:|---:|---:|---:|---:|---|")
        for level, p50, p99, rate, per, ev, streamed_rate, _a, _b in rows_out:
            evs = ", ".join(f"{k} {v}" for k, v in sorted(ev.items()))
            print(f"| {level:,} | {p50:.2f} | {p99:.2f} | {rate:,.0f} | {streamed_rate:,.0f} | {per:,.0f} | {evs} |")
        print(f"\np50 ratio largest/smallest level: {rows_out[-1][1] / rows_out[0][1]:.2f}")
        print(f"bulk load: {stored:,} stories, {stored / load_s:,.0f} stories/s ({args.workers} workers)")
    finally:
        server.stop()


def _sample(f: Iterator[str], kept: list[str], rng: np.random.Generator, fresh_n: int, size: int) -> list[Doc]:
    """Fresh filler documents alternating with near copies of stored ones (another URL, a changed
    headline, an appended credit line)."""
    fresh = [to_doc(next(f)) for _ in range(fresh_n)]
    near = []
    for _ in range(size - fresh_n):
        d = to_doc(kept[int(rng.integers(len(kept)))])
        url = d.url.replace("https://", f"https://m{rng.integers(1 << 30)}.")
        near.append(Doc(url, f"{d.title} | Mirror", d.body + CREDIT))
    return [x for pair in zip(fresh, near, strict=True) for x in pair]


def _pin(server_pid: int) -> None:
    """This process on the first CPU it may use, every thread of redis-server on the second."""
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        raise SystemExit("--pin needs two CPUs")
    os.sched_setaffinity(0, {cpus[0]})
    for task in Path(f"/proc/{server_pid}/task").iterdir():
        os.sched_setaffinity(int(task.name), {cpus[1]})
    print(f"# pinned: this process on CPU {cpus[0]}, redis-server on CPU {cpus[1]}", file=sys.stderr, flush=True)


def _head(path: Path, n: int) -> list[str]:
    with path.open(encoding="utf-8") as f:
        return [next(f) for _ in range(n)]


if __name__ == "__main__":
    main()
