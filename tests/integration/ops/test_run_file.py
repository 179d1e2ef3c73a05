"""The ops commands find the `wire run` of their folder through its run file, with no `WIRE_` variable set
(click's CliRunner, real Redis); a stale run file is ignored; explicit variables win. And what `wire run`
itself does with the run file, and its stop line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path

import pytest
import redis
from click.testing import CliRunner, Result

from tests.support.env import wire_env
from worker.dedup import Dedup, Doc
from worker.keys import BROKER_UNACKED, Keys
from worker.ops import runfile
from worker.ops.cli import cli
from worker.ops.redis_server import RedisProcess, free_port
from worker.ops.run import leftover_line
from worker.publish import dead_letter

BODY = " ".join(f"word{i} of the harbour story" for i in range(60))


@pytest.fixture
def folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A folder to run the commands in (their default WIRE_DATA_DIR is `data` under it)."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _sources(where: Path, *names: str) -> Path:
    where.write_text("sources:\n" + "".join(f"- name: {n}\n  feeds: [https://{n}.example/feed]\n" for n in names))
    return where


def _run(folder: Path, redis_url: str, prefix: str, *, pid: int | None = None, started: float | None = None,
         sources: Path | None = None) -> runfile.RunInfo:
    """A run file in `folder`/data, as `wire run` writes it; by default of this (live) process."""
    pid = os.getpid() if pid is None else pid
    info = runfile.RunInfo(pid=pid, started=runfile.started(pid) if started is None else started,
                           console_url="http://127.0.0.1:9999/", redis_url=redis_url,
                           sources=str(sources or _sources(folder / "run-sources.yaml", "north", "south")),
                           key_prefix=prefix)
    (folder / "data").mkdir(exist_ok=True)
    (folder / "data" / "run.json").write_text(json.dumps(asdict(info)))
    return info


def invoke(*args: str, **env: str) -> Result:
    """`wire ARGS` with no `WIRE_` variable but `env` (CliRunner keeps stderr apart)."""
    unset: dict[str, str | None] = {k: None for k in os.environ if k.startswith("WIRE_")}
    return CliRunner().invoke(cli, list(args), env={**unset, **env})


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_status_explain_and_dlq_find_the_run_of_this_folder(folder: Path, redis_url: str, r: redis.Redis,
                                                             prefix: str) -> None:
    """With no WIRE_ variable, `wire status`, `wire explain URL` and `wire dlq list` read data/run.json, say in
    one line which run they use, and answer from its Redis, under its key prefix, with its sources."""
    run = _run(folder, redis_url, prefix)
    keys = Keys.for_prefix(prefix)
    letter = dead_letter(r, keys, stage="fetch", reason="http_500", error="HTTP 500", url="https://north.example/a",
                         source="north", payload={"url": "https://north.example/a", "source": "north"}, attempts=3)
    Dedup(r, keys.dedup_ns()).submit(Doc("https://north.example/harbour", "Harbour", BODY), now=1000.0)
    using = f"wire: using the wire run of data/run.json (pid {run.pid}, console http://127.0.0.1:9999/): " \
            f"Redis {redis_url}, sources {run.sources}, key prefix {prefix}"

    status = invoke("status", "--json")
    assert status.exit_code == 0, status.output
    assert status.stderr.splitlines() == [using]
    doc = json.loads(status.stdout)
    assert [s["name"] for s in doc["sources"]] == ["north", "south"] and doc["dead_letters"] == 1

    explained = invoke("explain", "https://north.example/harbour")
    assert explained.exit_code == 0, explained.output
    assert explained.stderr.splitlines() == [using]
    assert "decisions for https://north.example/harbour" in explained.stdout and " new " in explained.stdout

    listed = invoke("dlq", "list")
    assert listed.exit_code == 0, listed.output
    assert listed.stderr.splitlines() == [using]
    assert letter in listed.stdout and f"1 in {keys.dead_stream}" in listed.stdout


def test_without_a_run_the_ops_commands_say_how_to_get_one(folder: Path) -> None:
    """No run file and no WIRE_REDIS_URL: one line naming the variable, the data folder and `wire run`."""
    for args in (["status"], ["explain", "https://north.example/a"], ["dlq", "list"]):
        result = invoke(*args)
        assert result.exit_code == 1, (args, result.output)
        assert result.stderr.splitlines() == [
            "Error: WIRE_REDIS_URL is not set, and no wire run is running with its data in data (no live "
            "data/run.json): start `wire run` in this folder, or set WIRE_REDIS_URL"], args


@pytest.mark.parametrize("why", ["dead", "reused", "garbled"])
def test_a_stale_run_file_is_ignored_with_one_line(why: str, folder: Path, redis_url: str, prefix: str) -> None:
    """A run file whose process is gone (or whose pid now belongs to another process, or that is not a run
    file at all) is not used: one line says why, then the command fails as with no run file."""
    if why == "dead":
        note = f"the wire run that wrote it (pid {_run(folder, redis_url, prefix, pid=_dead_pid(), started=1.0).pid}) " \
               "is not running"
    elif why == "reused":  # this process is alive, but did not start when the file says
        note = f"the wire run that wrote it (pid {_run(folder, redis_url, prefix, started=1.0).pid}) is not running"
    else:
        (folder / "data").mkdir()
        (folder / "data" / "run.json").write_text('{"pid": 12')
        note = "not a run file (not JSON (Expecting ',' delimiter))"
    result = invoke("status")
    assert result.exit_code == 1, result.output
    lines = result.stderr.splitlines()
    assert len(lines) == 2 and lines[0] == f"wire: ignoring data/run.json: {note}", lines
    assert lines[1].startswith("Error: WIRE_REDIS_URL is not set"), lines


def test_explicit_variables_win_over_the_run_file(folder: Path, redis_url: str, prefix: str) -> None:
    """WIRE_REDIS_URL set: the run file is not read at all. WIRE_SOURCES set: the run's Redis, these sources."""
    _run(folder, f"redis://127.0.0.1:{free_port()}/0", prefix)  # nothing listens there
    mine = _sources(folder / "mine.yaml", "east")
    result = invoke("status", "--json", WIRE_REDIS_URL=redis_url, WIRE_KEY_PREFIX=prefix, WIRE_SOURCES=str(mine))
    assert result.exit_code == 0, result.output
    assert result.stderr == ""
    assert [s["name"] for s in json.loads(result.stdout)["sources"]] == ["east"]

    _run(folder, redis_url, prefix)
    result = invoke("status", "--json", WIRE_SOURCES=str(mine))
    assert result.exit_code == 0, result.output
    assert result.stderr.startswith("wire: using the wire run of data/run.json") and f"sources {mine}," in \
        result.stderr
    assert [s["name"] for s in json.loads(result.stdout)["sources"]] == ["east"]


def test_wire_run_refuses_a_data_folder_a_live_run_holds(folder: Path, redis_url: str, prefix: str) -> None:
    """A second `wire run` on the same data folder: one line naming the first (pid, console), exit 1,
    nothing started (no Redis folder), the first run's file untouched."""
    run = _run(folder, redis_url, prefix)
    before = (folder / "data" / "run.json").read_text()
    env = wire_env(sources=_sources(folder / "s.yaml", "north"), metrics_port=free_port(),
                   metrics_host="127.0.0.1")
    done = subprocess.run([sys.executable, "-m", "worker.ops.cli", "run"], env=env, cwd=folder,
                          capture_output=True, text=True, timeout=60)
    lines = [line for line in (done.stdout + done.stderr).splitlines() if line.strip()]
    assert done.returncode == 1, lines
    assert lines == [f"error: another wire run (pid {run.pid}, console http://127.0.0.1:9999/) is using "
                     f"{folder.resolve() / 'data'}: stop it first, or give this one another WIRE_DATA_DIR"]
    assert not (folder / "data" / "redis").exists()
    assert (folder / "data" / "run.json").read_text() == before


def test_a_run_file_is_written_for_its_owner_only_and_released_by_its_writer_only(tmp_path: Path,
                                                                                  redis_url: str) -> None:
    """claim() writes mode 0600 (it may hold a Redis password); release() by another pid leaves it."""
    info = runfile.RunInfo(pid=os.getpid(), started=runfile.started(os.getpid()), console_url="http://x:1/",
                           redis_url=redis_url, sources="/s.yaml", key_prefix="wire")
    where = runfile.claim(tmp_path / "data", info)
    assert where == tmp_path / "data" / "run.json" and (where.stat().st_mode & 0o777) == 0o600
    assert runfile.lookup(tmp_path / "data").run == info
    runfile.release(tmp_path / "data", os.getpid() + 1)
    assert where.exists()
    runfile.release(tmp_path / "data", os.getpid())
    assert not where.exists() and runfile.lookup(tmp_path / "data") == runfile.Lookup(where)


def test_the_stop_line_says_what_is_left(redis_server: RedisProcess, prefix: str) -> None:
    """Tasks queued per queue (priority lists included), unacknowledged deliveries, parked retries."""
    client = redis.Redis(port=redis_server.port, db=13)
    client.flushdb()
    keys = Keys.for_prefix(prefix)
    try:
        assert leftover_line(client, client, keys) == "left 0 tasks queued, 0 in flight, 0 parked"
        client.rpush("fetch", "a", "b")
        client.rpush("process\x06\x163", "c")
        client.hset(BROKER_UNACKED, "tag", "message")
        client.zadd(keys.parked(), {"task": 1.0})
        assert leftover_line(client, client, keys) == \
            "left 3 tasks queued (fetch 2, process 1), 1 in flight, 1 parked"
    finally:
        client.flushdb()
        client.close()


def test_a_subprocess_command_also_finds_the_run(folder: Path, redis_url: str, prefix: str) -> None:
    """The installed entry point (not only CliRunner) reads the run file of the folder it runs in."""
    run = _run(folder, redis_url, prefix)
    done = subprocess.run([sys.executable, "-m", "worker.ops.cli", "status", "--json"], env=wire_env(),
                          cwd=folder, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert f"using the wire run of data/run.json (pid {run.pid}" in done.stderr
    assert [s["name"] for s in json.loads(done.stdout)["sources"]] == ["north", "south"]
