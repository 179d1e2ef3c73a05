"""Updates from furniture: one story in two site templates, and the same story grown by two paragraphs.

    python bench/dedup_templates.py DIR [DIR ...] [--stories 40]

Each DIR is a dupbench set (`dupbench.py make`). Its first `--stories`
originals of 4 paragraphs or more are dressed in the four templates of
tests/support/newsroom.py (an old-style table/FONT/BR page whose furniture
leaks into the text, a WordPress theme, a JSON-LD site, a portal with an
inline "Trending now" list), extracted, and decided against each other the
way two sites' copies meet in dedup (pure `decide`, no learned furniture:
every page is a host's first): for every ordered pair of templates X != Y,
the copy in Y against the stored copy in X (an update is spurious), and the
copy in Y grown by two paragraphs of another story against the stored copy
in X (an update is right). Prints the two counts.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.support.newsroom import TEMPLATES  # noqa: E402
from worker.dedup.decide import Thresholds, decide  # noqa: E402
from worker.dedup.fingerprint import fingerprint  # noqa: E402
from worker.dedup.record import Story  # noqa: E402
from worker.extract import extract  # noqa: E402


def run(folder: Path, n_stories: int, th: Thresholds) -> tuple[int, int, int, int]:
    truth = json.loads((folder / "truth.json").read_text())
    items = [json.loads(line) for line in (folder / "items.jsonl").read_text().splitlines()]
    originals = [i for i in items if truth[i["id"]]["kind"] == "original"]
    stories, donors = originals[:n_stories], originals[n_stories:]
    spurious = pairs = right = grown_pairs = 0
    for k, item in enumerate(stories):
        paras = [p for p in item["body"].split("\n\n") if p.strip()]
        extra = [p for d in donors[k:] + donors[:k] for p in d["body"].split("\n\n") if len(p.split()) > 15][:2]
        if len(paras) < 4 or len(extra) < 2:
            continue
        story = {"title": item["title"] or "Untitled", "agency": "AP", "paragraphs": paras}
        grown = dict(story, paragraphs=paras[:3] + extra + paras[3:])
        for x, render_x in TEMPLATES.items():
            stored = Story.of("0123456789abcdef", 1, f"http://{x}.test/a",
                              fingerprint(extract(render_x(story, seed=1), f"http://{x}.test/a").body))
            for y, render_y in TEMPLATES.items():
                if x == y:
                    continue
                url = f"http://{y}.test/b"
                copy = fingerprint(extract(render_y(story, seed=2), url).body)
                spurious += decide(url, copy, None, None, [stored], th).event == "update"
                bigger = fingerprint(extract(render_y(grown, seed=2), url).body)
                right += decide(url, bigger, None, None, [stored], th).event == "update"
                pairs += 1
                grown_pairs += 1
    return spurious, pairs, right, grown_pairs


def main() -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    ap.add_argument("dirs", nargs="+", type=Path)
    ap.add_argument("--stories", type=int, default=40, help="originals taken from each set")
    args = ap.parse_args()
    totals = [0, 0, 0, 0]
    for folder in args.dirs:
        for i, v in enumerate(run(folder, args.stories, Thresholds())):
            totals[i] += v
    spurious, pairs, right, grown = totals
    print(f"copies in another template published as update: {spurious} of {pairs}")
    print(f"copies grown by two paragraphs published as update: {right} of {grown}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
