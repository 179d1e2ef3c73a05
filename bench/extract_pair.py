"""Does extraction cost more CPU when two processes extract at once?

    python bench/extract_pair.py [--rounds 4] [--passes 2]

The pipeline runs two prefork children extracting side by side on this
2-core machine, and the efficiency's denominator is extraction alone in one
process. This measures what sharing the machine's caches and memory bus
costs: each round times extraction (pages per CPU-second of the process,
``time.process_time``) in one process, then in two processes started
together behind a barrier, then in one again. The figure is the pair's
per-page CPU over the mean of the two single runs: 1.00 means two at once
cost what one does. The median over the rounds is the figure.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import statistics
import sys
from multiprocessing.synchronize import Barrier
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from extract import DEFAULT_DATA, load_pages, pages_per_cpu_second  # noqa: E402

from worker.extract import extract  # noqa: E402

Pages = list[bytes]


def _extract_passes(pages: Pages, passes: int, start: Barrier, out: mp.Queue) -> None:
    extract(pages[0])  # warm on a real page: first-call costs (regex compilation, imports) are not the question
    start.wait()
    out.put(pages_per_cpu_second(extract, pages, passes))


def rates(pages: Pages, processes: int, passes: int) -> list[float]:
    """Pages per CPU-second of each of `processes` processes extracting at the same time."""
    out: mp.Queue = mp.Queue()
    start = mp.Barrier(processes)
    procs = [mp.Process(target=_extract_passes, args=(pages, passes, start, out)) for _ in range(processes)]
    for p in procs:
        p.start()
    for p in procs:  # join first: a process that died never puts its rate (a float: the queue cannot fill)
        p.join()
        if p.exitcode:
            raise SystemExit(f"an extraction process exited with {p.exitcode}")
    return [out.get(timeout=5) for _ in procs]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--passes", type=int, default=2, help="passes over the pages per process and measurement")
    args = ap.parse_args()
    mp.set_start_method("fork")
    pages = load_pages(args.data)
    print(f"{len(pages)} pages, {args.passes} passes per measurement")
    print("| round | one | two at once | one | pair's CPU per page / one's |")
    print("|---|---:|---:|---:|---:|")
    ratios = []
    for n in range(1, args.rounds + 1):
        before = rates(pages, 1, args.passes)[0]
        pair = rates(pages, 2, args.passes)
        after = rates(pages, 1, args.passes)[0]
        ratio = ((before + after) / 2) / (sum(pair) / 2)
        ratios.append(ratio)
        print(f"| {n} | {before:.1f} | {pair[0]:.1f} {pair[1]:.1f} | {after:.1f} | {ratio:.3f} |", flush=True)
    # the median: this machine's speed drifts within a round, and a round whose
    # two single-process passes disagree carries that drift into its ratio
    print(f"median ratio {statistics.median(ratios):.3f}, mean {statistics.mean(ratios):.3f}"
          f" (range {min(ratios):.3f}-{max(ratios):.3f}, {len(ratios)} rounds)")


if __name__ == "__main__":
    main()
