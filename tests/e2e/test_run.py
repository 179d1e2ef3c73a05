"""`wire run`: one command starts an embedded Redis, workers, beat and the server,
publishes from a loopback site, prints progress, and Ctrl-C leaves no process behind."""

from __future__ import annotations

import json
import os
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
from tests.support.run import alive, wire_cli
from tests.support.sites import sources_yaml, syndication_sites
from worker.ops.malloc import find_jemalloc, in_use
from worker.ops.redis_server import free_port

pytestmark = pytest.mark.slow


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


def test_run_says_where_things_are_and_the_ops_commands_find_it(tmp_path: Path) -> None:
    """`wire run` in a folder (JSON logs): plain lines give the console URL, the embedded Redis, the sources
    file and a line to export; `wire status`, `wire explain URL` and `wire dlq list` run in that folder with no
    WIRE_ variable answer about that run; the export line works from elsewhere; Ctrl-C (to the process group)
    stops the workers before Redis, says what is left and removes the run file, after which the commands say
    no run is there."""
    server = SiteServer()
    sites = syndication_sites(server)
    work = tmp_path / "work"
    work.mkdir()
    sources = tmp_path / "sources.yaml"
    sources.write_text(sources_yaml(sites).replace("ROUTE_STREAM", "wire:items:ap"))
    port = free_port()
    env = wire_env(sources=sources, allow_private_addresses=1, metrics_port=port, log_format="json",
                   fetch_concurrency=4, process_concurrency=1)  # no WIRE_DATA_DIR: `data` in the folder
    log = open(tmp_path / "run.log", "w+b")  # noqa: SIM115
    # a process group of its own, as a shell gives a command: Ctrl-C signals the whole group
    proc = subprocess.Popen([sys.executable, "-m", "worker.ops.cli", "run"], env=env, cwd=work,
                            stdout=log, stderr=subprocess.STDOUT, process_group=0)
    try:
        def output() -> str:
            return (tmp_path / "run.log").read_text(errors="replace")

        wait_for(lambda: "wire: started " in output(), timeout=60, what="the start lines")
        lines = output().splitlines()
        redis_url = re.search(r"^wire: embedded Redis on (redis://127\.0\.0\.1:\d+/0) \(data in (.*)\)$",
                              output(), re.M)
        assert redis_url and redis_url.group(2) == str(work.resolve() / "data" / "redis"), lines
        assert lines[:5] == [
            f"wire: console and metrics on http://127.0.0.1:{port}/",
            redis_url.group(0),
            f"wire: sources from {sources} (3 sources)",
            "wire: ops commands (status, explain, reingest, dlq) run here find this run in data/run.json; "
            "in another folder or shell, first:",
            f"  export WIRE_REDIS_URL={redis_url.group(1)} WIRE_SOURCES={sources}",
        ], lines
        assert not any("celery beat v" in line or "[queues]" in line for line in lines)  # no Celery banners
        client = redis.Redis.from_url(redis_url.group(1))
        wait_for(lambda: client.xlen("wire:items") >= 3, timeout=90, what="three stories in wire:items")
        import urllib.request

        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=10) as resp:
            assert resp.status == 200 and "wire" in resp.read().decode()

        bare = wire_env()  # not one WIRE_ variable
        using = f"wire: using the wire run of data/run.json (pid {proc.pid}, console http://127.0.0.1:{port}/): " \
                f"Redis {redis_url.group(1)}, sources {sources}"
        status = wire_cli(["status", "--json"], work, bare)
        assert status.returncode == 0 and status.stderr.splitlines() == [using], status.stderr
        doc = json.loads(status.stdout)
        assert [s["name"] for s in doc["sources"]] == ["alpha", "beta", "gamma"]
        assert doc["counters"]["published"] >= 3
        story = json.loads(client.xrange("wire:items")[0][1][b"data"])["url"]
        explained = wire_cli(["explain", story], work, bare)
        assert explained.returncode == 0 and explained.stderr.splitlines() == [using], explained.stderr
        assert f"decisions for {story}" in explained.stdout and " new " in explained.stdout
        listed = wire_cli(["dlq", "list"], work, bare)
        assert listed.returncode == 0 and listed.stderr.splitlines() == [using], listed.stderr
        assert "in wire:dead" in listed.stdout

        exported = dict(w.split("=", 1) for w in lines[4].split()[1:])
        elsewhere = wire_cli(["status", "--json"], tmp_path, {**bare, **exported})
        assert elsewhere.returncode == 0 and elsewhere.stderr == "", elsewhere.stderr
        assert [s["name"] for s in json.loads(elsewhere.stdout)["sources"]] == ["alpha", "beta", "gamma"]

        os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C in a terminal does: Redis must outlive the workers
        assert proc.wait(60) == 0
        assert "Connection to broker lost" not in output()
        stopped = output().splitlines()[-1]
        assert re.fullmatch(r"wire: stopped; left \d+ tasks queued( \(.*\))?, \d+ in flight, \d+ parked", stopped), \
            stopped
        assert not (work / "data" / "run.json").exists()
        gone = wire_cli(["status"], work, bare)
        assert gone.returncode == 1 and "no wire run is running with its data in data" in gone.stderr, gone.stderr
    finally:
        if proc.poll() is None:
            proc.kill()
        server.stop()
