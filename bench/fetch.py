"""The fetch stage alone: CPU per page of a real `wire worker` on the fetch queue.

    python bench/fetch.py [--pages 1000] [--rounds 5] [--threads 8] [--hosts 4]

Starts a private Redis, the loopback news server of `bench/pipeline.py` and
one fetch worker (thread pool, as deployed), then in each round enqueues
--pages URLs it has not fetched yet as fetch tasks of `WIRE_FETCH_BATCH`
URLs, the way discovery does, and waits until every page is stored for the
process stage. No process worker runs, so the fetch worker's CPU is not
mixed with extraction's. Per round: pages/s, CPU milliseconds per page of
the fetch worker, of redis-server and of the page server, and Redis round
trips and commands per page (every client: the worker and this loop's
polling, which is a few calls a second). The median round is the figure;
rounds differ by the machine's drift.

Politeness pacing is raised for the benchmark (rate 10,000/s per host).
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from loopback import (  # noqa: E402
    DEFAULT_DATA,
    ROOT,
    cpu_seconds,
    load_pages,
    page_urls,
    proc_tree,
    redis_calls,
    start_page_server,
    worker_env,
)

sys.path.insert(0, str(ROOT))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pages", type=int, default=1000, help="pages per round")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--threads", type=int, default=8)
    ap.add_argument("--hosts", type=int, default=4)
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--set", action="append", default=[], metavar="WIRE_X=VALUE",
                    help="extra worker setting (repeatable)")
    args = ap.parse_args()
    if not (args.data / "pages").is_dir():
        print(f"no pages under {args.data}", file=sys.stderr)
        return 2
    import redis as redis_lib

    from worker.models import Candidate
    from worker.ops.redis_server import start_redis
    from worker.queue.app import create_app
    from worker.settings import Settings, load_sources

    page_files = load_pages(args.data)
    per_host = -(-args.pages * (args.rounds + 1) // args.hosts)  # a warm-up round, then the timed ones
    hosts = [f"127.0.1.{i + 1}" for i in range(args.hosts)]
    work = Path(tempfile.mkdtemp(prefix="wire-bench-fetch-"))
    redis_proc = start_redis(work / "redis", appendonly=False)
    server, ports = start_page_server(page_files, hosts, per_host)
    env = worker_env(work, redis_proc.url, hosts, ports, dict(x.split("=", 1) for x in args.set))
    os.environ.update(env)  # this process enqueues through the same broker settings
    settings = Settings.from_env()
    create_app(settings, load_sources(settings.sources_path))
    from worker.queue import batches

    worker = subprocess.Popen([sys.executable, "-m", "worker.ops.cli", "worker", "--queues", "fetch", "--pool",
                               "threads", "--concurrency", str(args.threads), "--name", "fetch"],
                              env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    client = redis_lib.Redis.from_url(redis_proc.url)
    # candidates interleaved across hosts, as several sources' discoveries would enqueue them
    # (page_urls lists them host by host; worker_env names host i's source "host{i}")
    by_host = page_urls(hosts, ports, per_host)
    candidates = [Candidate(url=by_host[i * per_host + j], source=f"host{i}").to_json()
                  for j in range(per_host) for i in range(len(hosts))]

    def cpu_now() -> dict[str, float]:
        return {"fetch worker": sum(cpu_seconds(p) for p in proc_tree(worker.pid)),
                "redis-server": cpu_seconds(redis_proc.process.pid), "page server": cpu_seconds(server.pid)}

    time.sleep(3.0)  # the worker connects
    rows = []
    try:
        for rnd in range(args.rounds + 1):
            chunk = candidates[rnd * args.pages:(rnd + 1) * args.pages]
            target = (rnd + 1) * args.pages
            client.config_resetstat()
            cpu0 = cpu_now()
            started = time.monotonic()
            batches.enqueue_fetches(chunk, size=settings.fetch_batch)
            while int(client.hget("wire:stats", "fetched") or 0) < target:
                if time.monotonic() - started > 600:
                    raise SystemExit(f"round {rnd}: pages not all fetched after 600 s")
                time.sleep(0.01)
            elapsed = time.monotonic() - started
            bill = redis_calls(client)
            cpu = cpu_now()
            row = {name: (cpu[name] - cpu0[name]) / args.pages * 1000 for name in cpu}
            row["pages/s"] = args.pages / elapsed
            row["round trips"] = bill["reads"] / args.pages
            row["commands"] = sum(c for c, _ in bill["commands"].values()) / args.pages
            row["by_command"] = {name: c / args.pages for name, (c, _) in bill["commands"].items()}
            if rnd:  # round 0 warms connections, robots.txt caches and the scripts
                rows.append(row)
    finally:
        os.killpg(worker.pid, signal.SIGTERM)
        try:
            worker.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(worker.pid, signal.SIGKILL)
        server.terminate()
        redis_proc.stop()
    cols = ["pages/s", "fetch worker", "redis-server", "page server", "round trips", "commands"]
    print(f"fetch stage alone: {args.rounds} rounds of {args.pages} pages, {args.threads} threads, "
          f"{args.hosts} hosts, WIRE_FETCH_BATCH={settings.fetch_batch}")
    print("| round | pages/s | fetch worker CPU ms/page | redis-server ms/page | page server ms/page "
          "| Redis round trips/page | Redis commands/page |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for i, row in enumerate(rows, 1):
        print(f"| {i} | " + " | ".join(f"{row[c]:.2f}" if c != "pages/s" else f"{row[c]:.0f}" for c in cols) + " |")
    med = {c: statistics.median(r[c] for r in rows) for c in cols}
    print("| median | " + " | ".join(f"{med[c]:.2f}" if c != "pages/s" else f"{med[c]:.0f}" for c in cols) + " |")
    last = rows[-1]["by_command"]
    print("\nRedis commands per page, last round: " + ", ".join(
        f"{name} {n:.2f}" for name, n in sorted(last.items(), key=lambda kv: -kv[1]) if n >= 0.01))
    return 0


if __name__ == "__main__":
    sys.exit(main())
