"""End-to-end throughput: the real wire workers against a loopback news server.

    python bench/pipeline.py [--pages 2000] [--hosts 4] [--data DIR]
                             [--skip-baseline] [--stages-apart] [--profile DIR] [--set WIRE_X=VALUE]

Serves N article pages (real news pages from the extraction corpus, each served
at several URLs on several hosts, with a sitemap per host) from a separate
process, runs `wire worker` (discover+fetch on a thread pool, process on a
prefork pool of 2) and `wire beat` against a private Redis, and reports:

- end-to-end pages/s, first fetch to last page decided (the efficiency's
  numerator), and also from beat start (adding beat's start-up and the
  discovery of every URL, which no page waits on in a running deployment);
  CPU seconds per page of the worker processes, peak RSS per worker process,
  RSS at page ~1,000 and at the end; the prefork children's context
  switches per page (voluntary: they slept; involuntary: preempted);
- our extraction alone, pages per CPU-second, on the same pages, and the
  pipeline efficiency = end-to-end pages/s / (cores x extraction pages/CPU-s).
  This machine's speed drifts by up to a half within a minute, so extraction
  alone is measured before the run, after it, and during it: every
  --pause-every pages (default 500) the workers are stopped (SIGSTOP to their
  process groups), one pass over the pages is timed, and they go on
  (SIGCONT). The pauses are taken out of the clock and out of the machine's
  CPU bill; the denominator is the mean of all the passes;
- the baseline a user would otherwise write: one process looping requests +
  trafilatura over the same URLs, and our speed-up over it;
- Redis's side, per page: round trips, commands (by name), server time and
  bytes, for every client of the run (broker, dedup, metrics, beat).

Politeness pacing is raised for the benchmark (rate 10,000/s per host).

With --profile DIR, py-spy samples the thread holding the GIL in every worker
process (100 Hz: Python on the CPU, not threads waiting on sockets or queues)
for the whole run and the report adds where the workers' CPU went, by
component (extraction, dedup, Celery/kombu, Redis client, HTTP client, ...).
Sampling costs a little CPU, so take throughput figures from a run without it.

With --stages-apart the process worker starts only once every page has been
fetched and handed on, and the clock, the CPU bill and the Redis bill run
from its first decision to its last: the process stage alone, i.e. what the
efficiency would be if fetching cost nothing (an upper bound for any change
to the fetch stage; not how wire runs).
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from extract import pages_per_cpu_second  # noqa: E402
from loopback import (  # noqa: E402
    DEFAULT_DATA,
    ROOT,
    context_switches,
    cpu_seconds,
    load_pages,
    machine_cpu,
    page_urls,
    proc_tree,
    redis_calls,
    rss_mb,
    start_page_server,
    stat_fields,
    worker_env,
)

sys.path.insert(0, str(ROOT))

# profile components by the file of a sampled frame (py-spy prints paths relative
# to sys.path: "redis/client.py", "worker/pipeline/process.py"); the first match walking a
# stack from its leaf up names the component, so a Redis call made by dedup
# counts as Redis client and lxml called by extraction as extraction
COMPONENTS: list[tuple[str, tuple[str, ...]]] = [
    ("Redis client (redis-py, hiredis)", ("redis/", "hiredis/")),
    ("HTTP client (requests, urllib3)", ("requests/", "urllib3/", "http/", "charset_normalizer/", "idna/")),
    ("JSON", ("json/",)),
    ("logging (structlog)", ("structlog/", "logging/")),
    ("extraction (worker.extract, trafilatura, lxml)", ("worker/extract/", "trafilatura/", "justext/", "lxml/",
                                                         "htmldate/", "courlan/", "bs4/", "dateparser/")),
    ("dedup (fingerprint, decide)", ("worker/dedup/", "numpy/")),
    ("politeness (robots, pacing)", ("worker/fetch/politeness.py", "protego")),
    ("fetch (worker.fetch.fetcher, .http, .connections, .deadline)",
     ("worker/fetch/fetcher.py", "worker/fetch/http.py", "worker/fetch/connections.py", "worker/fetch/deadline.py")),
    ("zlib (page bytes in Redis)", ("zlib",)),
    ("Celery, kombu, billiard", ("celery/", "kombu/", "billiard/", "vine/", "amqp/", "click/")),
    ("wire tasks, pipeline, publish, metrics", ("worker/",)),
]


def _extract_call_site() -> str:
    """`worker/pipeline/process.py:<line>` of the `extract(` call in extract_page.

    A sample whose leaf is that line, with no frame below it, is extraction
    freeing its trees as its frame is popped (py-spy shows the caller's line
    then): it counts as extraction, not as the pipeline code around it.
    """
    source = (ROOT / "worker" / "pipeline" / "process.py").read_text().splitlines()
    line = next((i for i, text in enumerate(source, 1) if "= extract(" in text), 0)
    return f"worker/pipeline/process.py:{line}"


EXTRACT_CALL = _extract_call_site()


def component(stack: str) -> str:
    frames = stack.split(";")
    if frames[-1].endswith(f"({EXTRACT_CALL})"):
        return "extraction (worker.extract, trafilatura, lxml)"
    for frame in reversed(frames):
        path = frame[frame.rfind("(") + 1 : frame.rfind(":")] if frame.endswith(")") else ""
        for name, prefixes in COMPONENTS:
            if path.startswith(prefixes) or any(f"/{p}" in path for p in prefixes):
                return name
    return "other (interpreter, stdlib)"


def profile_report(raw_files: list[Path]) -> list[tuple[str, int]]:
    """Samples per component over py-spy raw (collapsed stack) files."""
    totals: dict[str, int] = {}
    for path in raw_files:
        for line in path.read_text(errors="replace").splitlines():
            stack, _, count = line.rpartition(" ")
            if stack and count.isdigit():
                name = component(stack)
                totals[name] = totals.get(name, 0) + int(count)
    return sorted(totals.items(), key=lambda kv: -kv[1])


@dataclass
class Snapshot:
    """The counters a run's bills start from (the run's start, or the process stage's with --stages-apart)."""

    cpu: dict[str, float]  # worker or beat -> CPU seconds of its whole process tree
    own: dict[str, float]  # role -> CPU seconds of that one process
    kids: float  # the prefork children's CPU seconds
    switches: dict[int, tuple[int, int] | None]  # each child's context switches
    machine: float
    extract_cpu: float  # the workers' extraction CPU seconds and pages extracted, from wire's metrics
    extracted: int
    done: int  # pages decided before the clock started (not counted)
    at: float  # when it was taken (time.monotonic): the machine bill's seconds run from here

    @classmethod
    def take(cls, procs: dict[str, subprocess.Popen[bytes]], roles: dict[str, int], client: Any,
             done: int = 0) -> Snapshot:
        children = proc_tree(procs["process"].pid)[1:]
        extract_cpu, extracted = extraction_in_workers(client)
        client.config_resetstat()  # Redis counts commands and round trips from here
        return cls(cpu={name: sum(cpu_seconds(p) for p in proc_tree(proc.pid)) for name, proc in procs.items()},
                   own={name: cpu_seconds(pid) for name, pid in roles.items()},
                   kids=sum(cpu_seconds(p) for p in children),
                   # how often the children slept and how often they were preempted (docs/benchmarks.md)
                   switches={p: context_switches(p) for p in children},
                   machine=machine_cpu(), extract_cpu=extract_cpu, extracted=extracted, done=done,
                   at=time.monotonic())


def child_switches(before: dict[int, tuple[int, int] | None]) -> tuple[int, int] | None:
    """The children's context switches since `before`, summed; None if a child was replaced meanwhile."""
    vol = invol = 0
    for pid, start in before.items():
        now = context_switches(pid)
        if start is None or now is None:
            return None
        vol, invol = vol + now[0] - start[0], invol + now[1] - start[1]
    return vol, invol


def extraction_rate(pages: list[bytes]) -> float:
    """Our extraction alone over the distinct pages, pages per CPU-second of this process.

    Measured before the pipeline run, during it (workers stopped) and after
    it, and the mean is the denominator of the efficiency: this machine's
    speed drifts by up to a half within a minute, and a measurement on one
    side of the run moved the ratio by as much.
    """
    from worker.extract import extract

    extract(pages[0])  # warm on a real page: first-call costs are not the question
    return pages_per_cpu_second(extract, pages, 1)


def measure_with_workers_stopped(groups: list[int], pages: list[bytes]) -> float:
    """Extraction alone (pages per CPU-second) while the workers' process groups are stopped.

    SIGSTOP freezes every process of a worker (the prefork children too)
    wherever it is; nothing it holds times out in a few seconds (Redis
    sockets, the visibility timeout, task time limits), and SIGCONT lets it
    go on where it stopped.
    """
    for pgid in groups:
        os.killpg(pgid, signal.SIGSTOP)
    try:
        members = [pid for pgid in groups for pid in proc_tree(pgid)]
        deadline = time.monotonic() + 2.0
        while time.monotonic() < deadline and not all(_stopped(pid) for pid in members):
            time.sleep(0.005)
        return extraction_rate(pages)
    finally:
        for pgid in groups:
            os.killpg(pgid, signal.SIGCONT)


def _stopped(pid: int) -> bool:
    fields = stat_fields(pid)
    return fields is None or fields[0] in ("T", "t", "Z")  # gone counts as stopped


def extraction_in_workers(client: Any) -> tuple[float, int]:
    """CPU seconds the workers' extracting threads spent, and the pages they extracted (from wire's metrics).

    With these, the efficiency splits into two factors measured differently:
    extraction's share of the machine's capacity during the run (CPU in
    `extract()` over cores x seconds, both from the same seconds, so the
    machine's drift cancels out) divided by what extraction costs in the
    workers relative to alone (where the drift between the two measurements
    lands).
    """
    from worker.keys import Keys
    from worker.metrics import counter_sum

    key = Keys.for_prefix("wire").metrics()
    return (counter_sum(client, key, "wire_extract_cpu_seconds_total"),
            int(counter_sum(client, key, "wire_extract_seconds_count")))


def print_redis_calls(bill: dict[str, Any], pages: int) -> None:
    """Redis's side of the bill per page: every client of the run (broker, dedup, metrics, beat, this loop)."""
    commands: dict[str, tuple[int, float]] = bill["commands"]
    calls = sum(c for c, _ in commands.values())
    usec = sum(u for _, u in commands.values())
    print("\n| Redis, per page (all clients: broker, dedup, metrics, beat, benchmark loop) | value |")
    print("|---|---:|")
    print(f"| round trips (requests read by the server) | {bill['reads'] / pages:.1f} |")
    print(f"| commands (a pipeline or a script call counts each command in it) | {calls / pages:.1f} |")
    print(f"| server time in commands | {usec / pages:.0f} us |")
    print(f"| bytes to / from Redis | {bill['in'] / pages / 1024:.1f} kB / {bill['out'] / pages / 1024:.1f} kB |")
    print("\n| Redis command | calls per page | server us per page |")
    print("|---|---:|---:|")
    for name, (c, u) in sorted(commands.items(), key=lambda kv: -kv[1][0])[:12]:
        print(f"| {name} | {c / pages:.2f} | {u / pages:.1f} |")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pages", type=int, default=2000)
    ap.add_argument("--hosts", type=int, default=4)
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--fetch-threads", type=int, default=8)
    ap.add_argument("--process-children", type=int, default=2)
    ap.add_argument("--skip-baseline", action="store_true")
    ap.add_argument("--set", action="append", default=[], metavar="WIRE_X=VALUE",
                    help="extra worker setting, e.g. --set WIRE_TASK_EVENTS=false (repeatable)")
    ap.add_argument("--profile", type=Path, default=None, help="sample the workers with py-spy into this directory")
    ap.add_argument("--stages-apart", action="store_true",
                    help="fetch every page first, then start the process worker and clock it alone")
    ap.add_argument("--pause-every", type=int, default=500,
                    help="stop the workers every N pages to measure extraction alone during the run (0: never; "
                         "never with --profile)")
    args = ap.parse_args()
    if not (args.data / "pages").is_dir():
        print(f"no pages under {args.data}", file=sys.stderr)
        return 2
    from worker.ops.malloc import in_use as malloc_in_use
    from worker.ops.redis_server import start_redis

    page_files = load_pages(args.data)
    pages: list[bytes] = [p.read_bytes() for p in page_files]  # read once: five passes measure over them
    extract_before = extraction_rate(pages)
    per_host = -(-args.pages // args.hosts)
    n = per_host * args.hosts
    hosts = [f"127.0.1.{i + 1}" for i in range(args.hosts)]
    work = Path(tempfile.mkdtemp(prefix="wire-bench-"))
    redis_proc = start_redis(work / "redis", appendonly=False)
    server, ports = start_page_server(page_files, hosts, per_host)
    env = worker_env(work, redis_proc.url, hosts, ports,
                     {"WIRE_ITEMS_MAXLEN": str(n * 2), **dict(x.split("=", 1) for x in args.set)})
    cmd = [sys.executable, "-m", "worker.ops.cli"]

    pools = {"fetch": ("discover,fetch", "threads", args.fetch_threads),
             "process": ("process", "prefork", args.process_children)}

    def start_worker(name: str) -> subprocess.Popen[bytes]:
        queues, pool, concurrency = pools[name]
        return subprocess.Popen(cmd + ["worker", "--queues", queues, "--pool", pool, "--concurrency", str(concurrency),
                                       "--name", name],
                                env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)

    def stop_workers() -> None:
        for proc in procs.values():
            os.killpg(proc.pid, signal.SIGTERM)
        for proc in procs.values():
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)

    procs = {"fetch": start_worker("fetch")}
    if not args.stages_apart:
        procs["process"] = start_worker("process")
    import redis as redis_lib

    client = redis_lib.Redis.from_url(redis_proc.url)
    time.sleep(3.0)  # workers connect before the clock starts
    spies: list[tuple[subprocess.Popen[bytes], Path]] = []
    if args.profile:
        args.profile.mkdir(parents=True, exist_ok=True)
    procs["beat"] = subprocess.Popen(cmd + ["beat"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                     start_new_session=True)
    if args.stages_apart:
        # every page fetched and its process task queued (the counter is written just
        # before the task is enqueued); then the process stage starts on a full queue
        deadline = time.monotonic() + 1800
        while (fetched := int(client.hget("wire:stats", "fetched") or 0)) < n and time.monotonic() < deadline:
            time.sleep(0.2)
        if fetched < n:
            stop_workers()
            server.terminate()
            redis_proc.stop()
            print(f"--stages-apart: only {fetched} of {n} pages fetched in 30 minutes", file=sys.stderr)
            return 1
        time.sleep(1.0)
        procs["process"] = start_worker("process")
    if args.profile:
        spy = str(Path(sys.executable).with_name("py-spy"))
        for name in ("fetch", "process"):
            out = args.profile / f"{name}.raw"
            spies.append((subprocess.Popen([spy, "record", "--pid", str(procs[name].pid), "--subprocesses",
                                            "--gil", "--rate", "100", "--format", "raw", "-o", str(out)],
                                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL), out))
    # the machine's whole bill, process by process (the workers' share is only part of it)
    roles = {"redis-server": redis_proc.process.pid, "page server": server.pid, "fetch worker": procs["fetch"].pid,
             "process worker (parent)": procs["process"].pid}
    base = Snapshot.take(procs, roles, client)  # taken again at the first decision with --stages-apart
    started = base.at
    first_fetch: float | None = None  # when the clock starts: the first page fetched (or decided, --stages-apart)
    peak: dict[int, float] = {}
    rss_at_1000: dict[int, float] = {}
    done = 0
    # extraction alone measured during the run, with the workers stopped (see the module's docstring)
    during: list[float] = []
    paused = 0.0  # seconds the workers were stopped for those measurements
    paused_cpu = 0.0  # the machine's CPU seconds in the pauses (the measurement itself)
    next_pause = args.pause_every if args.pause_every > 0 and not args.profile else None
    # the loop's own cost is kept off the machine the workers share: the process
    # tree (a scan of /proc, ~2 ms) is read once a second, not at every poll
    watched: list[int] = []
    tree_read = 0.0
    while True:
        stats = {k.decode(): int(float(v)) for k, v in client.hgetall("wire:stats").items()}
        done = sum(stats.get(k, 0) for k in ("published", "duplicates", "skipped", "failed"))
        now = time.monotonic()
        if first_fetch is None and not args.stages_apart and stats.get("fetched", 0):
            first_fetch = now
        elif first_fetch is None and args.stages_apart and done:
            # the process stage alone: its bill starts here, and the pages decided so far are not counted
            first_fetch, base = now, Snapshot.take(procs, roles, client, done)
        if now - tree_read >= 1.0:
            watched = [pid for name in ("fetch", "process") for pid in proc_tree(procs[name].pid)]
            tree_read = now
        for pid in watched:
            rss = rss_mb(pid)
            peak[pid] = max(peak.get(pid, 0.0), rss)
            if done >= 1000 and pid not in rss_at_1000:
                rss_at_1000[pid] = rss
        if done >= n or now - started > 1800:
            break
        if next_pause is not None and done >= next_pause:
            p0, m0 = time.monotonic(), machine_cpu()
            during.append(measure_with_workers_stopped([procs["fetch"].pid, procs["process"].pid], pages))
            paused += time.monotonic() - p0
            paused_cpu += machine_cpu() - m0
            next_pause += args.pause_every
            continue
        # the first fetch and the last decision are timed closely (20 ms): they start and stop the clock
        time.sleep(0.02 if first_fetch is None or done >= n - 100 else 0.25)
    ended = time.monotonic() - paused  # the clock without the pauses
    elapsed = ended - started
    redis_bill = redis_calls(client)
    extract_cpu, extracted = extraction_in_workers(client)
    extract_cpu, extracted = extract_cpu - base.extract_cpu, extracted - base.extracted
    worker_malloc = malloc_in_use(proc_tree(procs["process"].pid)[-1])
    rss_end = {pid: rss_mb(pid) for name in ("fetch", "process") for pid in proc_tree(procs[name].pid)}
    cpu1 = {name: sum(cpu_seconds(p) for p in proc_tree(proc.pid)) for name, proc in procs.items()}
    own1 = {name: cpu_seconds(pid) for name, pid in roles.items()}
    kids1 = sum(cpu_seconds(p) for p in proc_tree(procs["process"].pid)[1:])
    switches = child_switches(base.switches)
    machine1 = machine_cpu() - paused_cpu
    by_role = {name: own1[name] - base.own[name] for name in roles}
    by_role["process worker (children)"] = kids1 - base.kids
    by_role["fetch worker"] = cpu1["fetch"] - base.cpu["fetch"]
    by_role["process worker (parent)"] = (cpu1["process"] - base.cpu["process"]) - by_role["process worker (children)"]
    # beat starts inside the default window: then all its CPU counts, most of it the one-off start-up (imports)
    by_role["beat (start-up, scheduling)"] = cpu1["beat"] - base.cpu["beat"]
    for spy_proc, _ in spies:
        spy_proc.send_signal(signal.SIGINT)  # py-spy writes its file on SIGINT
    for spy_proc, _ in spies:
        try:
            spy_proc.wait(60)
        except subprocess.TimeoutExpired:
            spy_proc.kill()
    stop_workers()
    cpu_total = sum(cpu1[k] - base.cpu[k] for k in ("fetch", "process"))
    counted = done - base.done  # the pages decided inside the clock
    outcome = {k: stats.get(k, 0) for k in ("published", "duplicates", "skipped", "failed")}

    # extraction alone, same pages, this process, again after the run (see extraction_rate)
    extract_after = extraction_rate(pages)
    passes = [extract_before, *during, extract_after]
    extract_rate = sum(passes) / len(passes)

    baseline_rate = None
    if not args.skip_baseline:
        import requests
        import trafilatura

        urls = page_urls(hosts, ports, per_host)
        sess = requests.Session()
        b0 = time.monotonic()
        for url in urls:
            trafilatura.extract(sess.get(url, timeout=10).content, include_comments=False)
        baseline_rate = len(urls) / (time.monotonic() - b0)

    server.terminate()
    redis_proc.stop()
    cores = os.cpu_count() or 1
    e2e_all = done / elapsed  # from beat start: includes start-up and the first discovery
    clock = ended - (first_fetch or started)  # the efficiency's seconds: first fetch (or decision) to last decision
    per = max(counted, 1)  # the pages the bills are divided by
    e2e = counted / clock
    print(f"pages {n} ({len(page_files)} distinct real pages on {args.hosts} hosts); outcomes {outcome}")
    print("| measure | value |")
    print("|---|---|")
    if args.stages_apart:
        print(f"| process stage alone (--stages-apart: every page fetched first), pages/s, first decision to last "
              f"({base.done} pages decided before it not counted) | {e2e:.1f} |")
    else:
        print(f"| end-to-end pages/s, first fetch to last page decided | {e2e:.1f} |")
        print(f"| end-to-end pages/s, from beat start (start-up, discovery of {n} URLs: "
              f"{(first_fetch or started) - started:.1f} s) | {e2e_all:.1f} |")
    print(f"| worker CPU seconds per page | {cpu_total / per * 1000:.1f} ms |")
    print(f"| extraction alone, pages per CPU-second (mean of: before / during, workers stopped / after) "
          f"| {extract_rate:.1f} ({extract_before:.1f} / {' '.join(f'{x:.1f}' for x in during) or '-'} / "
          f"{extract_after:.1f}) |")
    if during:
        print(f"| pauses for those measurements (out of the clock) | {len(during)}, {paused:.1f} s |")
    print(f"| pipeline efficiency = e2e / ({cores} cores x extraction) | {e2e / (cores * extract_rate):.2f} |")
    if extracted:
        # both halves of this split are measured over the same seconds, so the machine's drift cancels
        in_workers = extract_cpu / extracted
        print(f"| extraction CPU per page in the workers / alone | {in_workers * 1000:.1f} ms / "
              f"{1000 / extract_rate:.1f} ms (ratio {in_workers * extract_rate:.2f}) |")
        print(f"| extraction's share of the machine (worker extraction CPU / ({cores} cores x clock)) "
              f"| {extract_cpu / (cores * clock):.2f} |")
    if baseline_rate:
        print(f"| baseline (one process, requests + trafilatura) pages/s | {baseline_rate:.1f} |")
        print(f"| speed-up over the baseline | {e2e / baseline_rate:.2f}x |")
    if switches is not None:
        print(f"| context switches per page, process children: voluntary / involuntary "
              f"| {switches[0] / per:.1f} / {switches[1] / per:.1f} |")
    print(f"| allocator: process children / extraction alone | {worker_malloc} / {malloc_in_use()} |")
    for pid in sorted(peak):
        at = rss_at_1000.get(pid)
        end = rss_end.get(pid, 0.0)
        growth = f"{(end - at) / at * 100:+.1f}%" if at and end else "n/a"
        print(f"| RSS pid {pid}: peak {peak[pid]:.0f} MB, at page 1000 {at or 0:.0f} MB, end {end:.0f} MB | {growth} |")
    print("\n| CPU by process (whole machine) | ms per page |")
    print("|---|---:|")
    for name, secs in sorted(by_role.items(), key=lambda kv: -kv[1]):
        print(f"| {name} | {secs / per * 1000:.1f} |")
    rest = (machine1 - base.machine) - sum(by_role.values())
    print(f"| everything else (benchmark loop, kernel, py-spy) | {rest / per * 1000:.1f} |")
    print(f"| machine total ({cores} cores busy {(machine1 - base.machine) / (ended - base.at) / cores * 100:.0f}%) "
          f"| {(machine1 - base.machine) / per * 1000:.1f} |")
    print_redis_calls(redis_bill, per)
    if spies:
        report = profile_report([out for _, out in spies if out.exists()])
        total = sum(n for _, n in report) or 1
        per_page = cpu_total / per * 1000
        print("\n| worker CPU by component (py-spy samples) | share | ms per page |")
        print("|---|---:|---:|")
        for name, n in report:
            print(f"| {name} | {n / total * 100:.1f}% | {n / total * per_page:.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
