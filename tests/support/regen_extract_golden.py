"""Regenerate the expected JSON beside each golden HTML page in tests/fixtures/extract/.

    python tests/support/regen_extract_golden.py [NAME ...]

Run it after an intended change to extraction, then read the diff of the
JSON files before committing: every changed line is a behaviour change.
Each fixture's fetch URL (for canonical URL resolution) is in URLS below.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures" / "extract"
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from worker.extract import extract  # noqa: E402

URLS = {
    "seed_wordpress_ap": "https://asiadailywire.example/2021/07/06/taliban-wins-close-consulates/?utm_source=feed",
    "jsonld_newsarticle": "https://www.dailyledger.example/news/local/council-approves-tram-line-4521?ref=home",
    "reuters_style": "https://www.reuters.example/business/energy/oil-prices-climb-2022-10-05/",
    "inline_related": "https://coastalherald.example/news/2024/01/22/storm-power-outages",
    "german_dpa_latin1": "https://rundschau.example/wirtschaft/bahnstreik-legt-fernverkehr-lahm-1.2345",
    "tables_lists": "https://valleytimes.example/elections/2022/05/06/greens-gain-three-seats",
    "liveblog": "https://citysport.example/live/marathon-2024?page=1",
    "oldstyle_ap_table": "http://www.millbrooksentinel.example/news/nation/20261204-101.html",
    "oldstyle_font_paragraphs": "http://www.valleycourier.example/news/kabul1204.html",
    "oldstyle_br_mojibake_reuters": "http://www.lakeshoregazette.example/business/77812.html",
    "modern_subscribe_reuters": "https://www.harborledger.example/nation/2026/12/04/senate-stopgap-bill/?utm_source=rss",
}


# The fetch time the pages are extracted at (dates after the following day are refused): fixed, so
# the expected output does not depend on the machine's clock.
FETCHED_AT = 1796439600.0  # 2026-12-05T03:00:00Z


def expected(name: str) -> dict[str, object]:
    html = (FIXTURES / f"{name}.html").read_bytes()
    return extract(html, URLS.get(name), fetched_at=FETCHED_AT).to_json()


def main(names: list[str]) -> int:
    for name in names or sorted(p.stem for p in FIXTURES.glob("*.html")):
        out = FIXTURES / f"{name}.json"
        out.write_text(json.dumps(expected(name), indent=2, ensure_ascii=False, sort_keys=True) + "\n", encoding="utf-8")
        print(f"wrote {out.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
