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

The quality of the same extractors is measured by bench/extract_table.py.
"""

from __future__ import annotations

import argparse
import gzip
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

WARM = b"<html><body><article><p>warm up paragraph text here, long enough to be a sentence.</p></article></body></html>"


def load_pages(folder: Path) -> list[bytes]:
    pages: list[bytes] = []
    for path in sorted((folder / "pages").iterdir()):
        data = path.read_bytes()
        pages.append(gzip.decompress(data) if path.suffix == ".gz" else data)
    return pages


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
    warm_up()
    ours(WARM)
    theirs(WARM)
    mine, other = interleaved([ours, theirs], pages, args.repeat)
    n = len(pages) * args.repeat
    print(f"pages {len(pages)} x{args.repeat}, interleaved, CPU time of this process")
    print(f"wire.extract  {n / mine:8.1f} pages/CPU-s")
    print(f"trafilatura   {n / other:8.1f} pages/CPU-s")
    print(f"ratio         {other / mine:8.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
