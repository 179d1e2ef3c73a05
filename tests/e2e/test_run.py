"""`wire run`: one command starts an embedded Redis, workers, beat and the server,
publishes from a loopback site, prints progress, and Ctrl-C leaves no process behind."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis

from tests.support.env import wire_env
from tests.support.helpers import descendants, wait_for
from tests.support.loopback import SiteServer
from tests.support.paths import ROOT
from tests.support.sites import sources_yaml, syndication_sites
from worker.ops.malloc import find_jemalloc, in_use
from worker.ops.redis_server import free_port

pytestmark = pytest.mark.slow


def alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def test_run_publishes_and_stops_cleanly(tmp_path: Path, prefix: str) -> None:
    """With WIRE_SOURCES at a loopback site and no WIRE_REDIS_URL, stories reach the stream; SIGINT stops all."""
    server = SiteServer()
    sites = syndication_sites(server)
    sources = tmp_path / "sources.yaml"
    sources.write_text(sources_yaml(sites).replace("ROUTE_STREAM", "wire:items:ap"))
    env = wire_env(sources=sources, allow_private_addresses=1, data_dir=tmp_path / "data", metrics_port=free_port(),
                   log_format="json", fetch_concurrency=4, process_concurrency=2)
    log = open(tmp_path / "run.log", "w+b")  # noqa: SIM115
    proc = subprocess.Popen([sys.executable, "-m", "worker.ops.cli", "run"], env=env, cwd=ROOT,
                            stdout=log, stderr=subprocess.STDOUT)
    try:
        def output() -> str:
            return (tmp_path / "run.log").read_text(errors="replace")

        match = wait_for(lambda: re.search(r"embedded Redis on (redis://\S+)", output()), timeout=30,
                         what="the embedded Redis")
        client = redis.Redis.from_url(match.group(1))
        wait_for(lambda: client.xlen("wire:items") >= 3, timeout=90, what="three stories in wire:items")
        wait_for(lambda: "progress discovered=8" in output(), timeout=30, what="a progress line")
        items = [json.loads(f[b"data"]) for _, f in client.xrange("wire:items")]
        assert len(items) == 3 and len({i["story_id"] for i in items}) == 3
        metrics_port = env["WIRE_METRICS_PORT"]
        import urllib.request

        with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10) as resp:
            text = resp.read().decode()
        assert 'wire_pages_fetched_total{source="alpha",status="404"} 1.0' in text
        family = descendants(proc.pid)
        assert len(family) >= 5  # redis, 2 workers (+ pool children), beat, serve
        # the allocator: jemalloc in every wire process when it is installed (WIRE_MALLOC=auto), and said so
        wanted = "jemalloc" if find_jemalloc() else "glibc malloc"
        pythons = [p for p in family if "worker.ops.cli" in _cmdline(p)]
        assert len(pythons) >= 4 and {in_use(p) for p in pythons} == {wanted}, output()
        assert re.search(rf"started worker-fetch, .* on {wanted}", output())
        assert f'"malloc": "{wanted}"' in output()  # each worker's "worker starting" line
        proc.send_signal(signal.SIGINT)
        assert proc.wait(60) == 0
        deadline = time.monotonic() + 10
        while any(alive(p) for p in family) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not [p for p in family if alive(p)], output()
        assert "wire: stopped" in output()
    finally:
        if proc.poll() is None:
            proc.kill()
        server.stop()
