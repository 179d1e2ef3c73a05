"""Share of dupbench `update` items that arrive after an item of their story and are labelled `update`.

    python bench/dedup_updates.py DIR        # DIR from `dupbench.py make`, with DIR/pred.jsonl
                                             # from `wire dedup replay DIR/items.jsonl`

dupbench's scorer reports update recall as clustering (the update placed with
its story); the issue's second update target is the event: an update that
comes after its story must be published as `update`, not swallowed as a
`duplicate`. Items are taken in items.jsonl order, which is arrival order.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def main(d: Path) -> int:
    truth = json.loads((d / "truth.json").read_text())
    pred = {p["id"]: p for p in map(json.loads, (d / "pred.jsonl").read_text().splitlines())}
    seen: set[str] = set()
    n = ok = dup = 0
    for line in (d / "items.jsonl").read_text().splitlines():
        item_id = json.loads(line)["id"]
        t = truth[item_id]
        if t["kind"] == "update" and t["cluster"] in seen:
            n += 1
            ok += pred[item_id]["event"] == "update"
            dup += pred[item_id]["event"] == "duplicate"
        seen.add(t["cluster"])
    print(f"updates after their story: {ok}/{n} labelled update ({ok / max(n, 1):.3f}), {dup} duplicate")
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1])))
