"""worker/logs.py: JSON log lines stay whole when several processes share one stream.

Prefork children inherit their parent's stderr (one container log, one file
in the tests). A non-interactive stderr is unbuffered (write-through), so a
line written as two writes (message, then newline: what `print` does) can have
a sibling's line land in between: `{...}{...}` and an empty line, which a log
shipper drops or misreads.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.support.paths import ROOT

WRITER = r"""
import sys
sys.path.insert(0, sys.argv[1])
from worker.logs import configure, get_logger
configure("json", "INFO")
log = get_logger("test")
for i in range(int(sys.argv[2])):
    log.info("page", stage="process", pid=int(sys.argv[3]), i=i, url="https://example.com/" + "x" * 200)
"""


def test_processes_sharing_stderr_write_whole_json_lines(tmp_path: Path) -> None:
    out = tmp_path / "shared.log"
    n, procs = 3000, 4
    with out.open("ab") as f:
        running = [subprocess.Popen([sys.executable, "-c", WRITER, str(ROOT), str(n), str(p)], stderr=f)
                   for p in range(procs)]
        for p in running:
            assert p.wait(120) == 0
    lines = out.read_text().splitlines()
    bad = [line for line in lines if not _json(line)]
    assert not bad, f"{len(bad)} of {len(lines)} lines are not one JSON object, e.g. {bad[:2]}"
    assert len(lines) == n * procs


def _json(line: str) -> bool:
    try:
        return isinstance(json.loads(line), dict)
    except ValueError:
        return False
