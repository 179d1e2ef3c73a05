"""The dev table: three corpora x (wire, trafilatura with metadata, htmldate) x measures, with held-out halves.

    python bench/extract_table.py [--shared ../shared] [--out /tmp/wire-eval] [--only wire]

Runs ``../shared/tools/extract_eval.py`` (the project's scorer, unchanged) once per
corpus and extractor (adapters in ``bench/extract_adapters.py``), keeps each run's
per-page JSON, and prints one table. Every score is also given on the two halves
of the corpus (pages in sorted id order, even and odd positions): rules are tuned
looking at the even half, and the odd half shows whether they generalise.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
# ../shared beside the checkout (or beside the folder of worktrees)
SHARED = next((p / "shared" for p in ROOT.parents if (p / "shared" / "tools").is_dir()), ROOT.parent / "shared")
RUNS = (
    ("scrapinghub", "extraction", ("wire", "trafilatura_meta")),
    ("readability", "extraction", ("wire", "trafilatura_meta")),
    ("htmldate", "dates", ("wire", "trafilatura_meta", "htmldate_only")),
)


def _load_scorer(path: Path) -> Any:
    spec = importlib.util.spec_from_file_location("extract_eval", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _scores(scorer: Any, pages: list[dict[str, Any]]) -> dict[str, float | None]:
    """Body F1, title exact, authors and day match over the given per-page records."""
    out: dict[str, float | None] = {"f1": None, "title": None, "authors": None, "day": None}
    rows = [tuple(p["tp_fp_fn"]) for p in pages if "tp_fp_fn" in p]
    if rows:
        out["f1"] = scorer.shingle_summary(rows)["f1"]
    for key, field in (("title", "title_exact"), ("authors", "authors_match"), ("day", "day_match")):
        values = [p[field] for p in pages if field in p]
        out[key] = statistics.fmean(values) if values else None
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shared", type=Path, default=SHARED)
    parser.add_argument("--out", type=Path, default=Path("/tmp/wire-eval"))
    parser.add_argument("--only", default="", help="comma-separated extractors to run (others read from --out)")
    parser.add_argument("--bench", default="", help="comma-separated corpora (default: all three)")
    args = parser.parse_args()
    tool = args.shared / "tools" / "extract_eval.py"
    scorer = _load_scorer(tool)
    only = {x for x in args.only.split(",") if x}
    benches = {x for x in args.bench.split(",") if x}
    args.out.mkdir(parents=True, exist_ok=True)
    lines = [f"{'corpus':<12} {'extractor':<17} {'part':<5} {'n':>4} {'body F1':>8} {'title':>6} {'authors':>8} {'day':>6}"]
    for bench, folder, extractors in RUNS:
        if benches and bench not in benches:
            continue
        for name in extractors:
            record = args.out / f"{bench}.{name}.json"
            if not only or name in only or not record.exists():
                cmd = [
                    sys.executable, str(tool), "--bench", bench, "--data", str(args.shared / "corpus" / folder),
                    "--extractor", f"extract_adapters:{name}", "--pythonpath", str(ROOT / "bench"),
                    "--pythonpath", str(ROOT), "--json", str(record), "--keep-text",
                ]
                subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
            pages = json.loads(record.read_text(encoding="utf-8"))["pages"]
            for part, chosen in (("all", pages), ("even", pages[0::2]), ("odd", pages[1::2])):
                s = _scores(scorer, chosen)
                cells = " ".join(
                    f"{'-' if s[k] is None else format(s[k], '.3f'):>{w}}"
                    for k, w in (("f1", 8), ("title", 6), ("authors", 8), ("day", 6))
                )
                lines.append(f"{bench:<12} {name:<17} {part:<5} {len(chosen):>4} {cells}")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
