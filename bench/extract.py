"""Speed benchmark: our extractor vs trafilatura, interleaved page by page in one process.

    python bench/extract.py [--data DIR] [--repeat 3]

For each page, ``worker.extract.extract`` and ``trafilatura.extract(html,
include_comments=False)`` run one after the other (the order alternating
from page to page), each timed with ``time.process_time``: CPU seconds of
this process, which load from other processes on the machine disturbs far
less than wall time, and interleaving puts any drift (CPU frequency, cache
pressure) on both alike. Prints pages per CPU-second for each and their
ratio. Both are warmed first (imports; htmldate's date parser loads its
locales once per process, as a worker does at start).

A third column runs ``extract`` with a host's learned furniture of the
largest size a host keeps (every line looked up, none of them on these
pages) and then counts the page's lines for the host's table, as the process
stage does: the cost of the furniture lookups.

The quality of the same extractors is measured by bench/extract_table.py.
"""

from __future__ import annotations

import argparse
import gzip
import random
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = next((p / "shared" for p in ROOT.parents if (p / "shared" / "corpus").is_dir()), ROOT.parent / "shared")
DEFAULT_DATA = SHARED / "corpus" / "extraction" / "scrapinghub"
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from worker.extract import extract, warm_up  # noqa: E402
from worker.extract.furniture import BlockStats, Template, forget_lines, sightings  # noqa: E402
from worker.pipeline.furniture import MAX_LINES  # noqa: E402

WARM = b"<html><body><article><p>warm up paragraph text here, long enough to be a sentence.</p></article></body></html>"


def load_pages(folder: Path) -> list[bytes]:
    pages: list[bytes] = []
    for path in sorted((folder / "pages").iterdir()):
        data = path.read_bytes()
        pages.append(gzip.decompress(data) if path.suffix == ".gz" else data)
    return pages


def pages_per_cpu_second(fn: Callable[[bytes], object], pages: list[bytes], repeat: int) -> float:
    """`fn` alone over every page `repeat` times, pages per CPU-second of this process (warm `fn` first)."""
    start = time.process_time()
    for _ in range(repeat):
        for html in pages:
            fn(html)
    return len(pages) * repeat / (time.process_time() - start)


def full_template() -> Template:
    """A host's table at its largest, every line learned (random keys: no page here has them)."""
    rnd = random.Random(7)
    blocks = {rnd.randbytes(8): BlockStats(4, 100, 1, 100, 0) for _ in range(MAX_LINES)}
    return Template("bench.example", pages=100, blocks=blocks)


def interleaved(fns: list[Callable[[bytes], object]], pages: list[bytes], repeat: int) -> list[float]:
    """CPU seconds spent in each of `fns` over every page, run alternately page by page."""
    spent = [0.0] * len(fns)
    for round_ in range(repeat):
        for index, html in enumerate(pages):
            order = range(len(fns)) if (index + round_) % 2 == 0 else reversed(range(len(fns)))
            for which in order:
                start = time.process_time()
                fns[which](html)
                spent[which] += time.process_time() - start
    return spent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="folder holding pages/*.html[.gz]")
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()
    if not (args.data / "pages").is_dir():
        print(f"no pages under {args.data}", file=sys.stderr)
        return 2
    import trafilatura

    pages = load_pages(args.data)
    ours: Callable[[bytes], object] = extract
    theirs: Callable[[bytes], object] = lambda html: trafilatura.extract(html, include_comments=False)  # noqa: E731
    template = full_template()

    def learned(html: bytes) -> object:
        forget_lines()  # no line known from another page or round: the cost of a new page
        article = extract(html, furniture=template)
        return sightings(article.body.split("\n\n"), article.furniture)

    warm_up()
    for fn in (ours, learned, theirs):
        fn(WARM)
    mine, with_furniture, other = interleaved([ours, learned, theirs], pages, args.repeat)
    n = len(pages) * args.repeat
    print(f"pages {len(pages)} x{args.repeat}, interleaved, CPU time of this process")
    print(f"wire.extract  {n / mine:8.1f} pages/CPU-s")
    print(f"trafilatura   {n / other:8.1f} pages/CPU-s")
    print(f"ratio         {other / mine:8.2f}")
    print(f"wire.extract with a host's full learned furniture, lines counted  {n / with_furniture:8.1f} pages/CPU-s,"
          f" ratio {other / with_furniture:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
