"""Speed and quality benchmark: our extractor vs trafilatura on the same pages.

    python bench/extract.py [--data DIR] [--repeat 1]

Prints pages per CPU-second (``time.process_time``) for
``worker.extract.extract`` and ``trafilatura.extract(html, include_comments=False)``
over the same pages in one run, and their ratio. Quality is scored with the
benchmark's own scorer on ``worker.extract:extract_dict`` (``extract``
returning a dict): docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import gzip
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "corpus" / "extraction" / "scrapinghub"
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from worker.extract import extract  # noqa: E402


def load_pages(folder: Path) -> list[tuple[bytes, str | None]]:
    pages: list[tuple[bytes, str | None]] = []
    for path in sorted((folder / "pages").iterdir()):
        data = path.read_bytes()
        if path.suffix == ".gz":
            data = gzip.decompress(data)
        pages.append((data, None))
    return pages


def pages_per_cpu_second(fn: Callable[[bytes], object], pages: list[tuple[bytes, str | None]], repeat: int) -> float:
    fn(b"<html><body><article><p>warm up paragraph text here.</p></article></body></html>")
    start = time.process_time()
    for _ in range(repeat):
        for html, _url in pages:
            fn(html)
    return len(pages) * repeat / (time.process_time() - start)


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
    ours = pages_per_cpu_second(lambda html: extract(html), pages, args.repeat)
    theirs = pages_per_cpu_second(lambda html: trafilatura.extract(html, include_comments=False), pages, args.repeat)
    print(f"pages {len(pages)} x{args.repeat}")
    print(f"wire.extract  {ours:8.1f} pages/CPU-s")
    print(f"trafilatura   {theirs:8.1f} pages/CPU-s")
    print(f"ratio         {ours / theirs:8.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
