"""The run file's content (worker.ops.runfile) and the lines `wire run` prints at start (worker.ops.run)."""

from __future__ import annotations

import json
import shlex
from dataclasses import asdict
from pathlib import Path

import pytest

from worker.ops.redis_server import RedisProcess
from worker.ops.run import console_url, start_lines
from worker.ops.runfile import RunInfo, parse
from worker.settings import parse_sources

RUN = RunInfo(pid=4242, started=1_700_000_000.5, console_url="http://127.0.0.1:9108/",
              redis_url="redis://127.0.0.1:35245/0", sources="/tmp/my sources.yaml", key_prefix="wire")


def test_a_run_file_reads_back_as_written() -> None:
    """What `wire run` writes (asdict, as JSON) parses to the same value; unknown fields are ignored."""
    assert parse(json.dumps(asdict(RUN))) == RUN
    assert parse(json.dumps({**asdict(RUN), "added_later": 1})) == RUN


@pytest.mark.parametrize("text, why", [
    ("{", "not JSON"),
    ("[]", "not a JSON object"),
    (json.dumps({**asdict(RUN), "pid": "4242"}), "'pid'"),
    (json.dumps({k: v for k, v in asdict(RUN).items() if k != "redis_url"}), "'redis_url'"),
    (json.dumps({**asdict(RUN), "pid": True}), "'pid'"),
    (json.dumps({**asdict(RUN), "broker_url": 5}), "'broker_url'"),
])
def test_a_broken_run_file_is_a_value_error_saying_what_is_wrong(text: str, why: str) -> None:
    """A truncated or hand-edited file is refused with the reason (the ops command then ignores it)."""
    with pytest.raises(ValueError, match=why):
        parse(text)


def test_the_run_sets_only_the_variables_it_changed() -> None:
    """Redis and sources always; prefix, stream and broker only when the run had them set."""
    assert RUN.env() == {"WIRE_REDIS_URL": "redis://127.0.0.1:35245/0", "WIRE_SOURCES": "/tmp/my sources.yaml"}
    other = RunInfo(**{**asdict(RUN), "key_prefix": "news", "items_stream": "news:out",
                       "broker_url": "redis://127.0.0.1:6390/0"})
    assert other.env() == {**RUN.env(), "WIRE_KEY_PREFIX": "news", "WIRE_ITEMS_STREAM": "news:out",
                           "WIRE_BROKER_URL": "redis://127.0.0.1:6390/0"}


def test_the_export_line_is_one_shell_line_that_sets_those_variables() -> None:
    """The line `wire run` prints for other shells: a path with a space is quoted, and the shell reads back
    exactly the run's variables."""
    line = RUN.export_line()
    assert line == "export WIRE_REDIS_URL=redis://127.0.0.1:35245/0 WIRE_SOURCES='/tmp/my sources.yaml'"
    words = shlex.split(line)
    assert words[0] == "export" and dict(w.split("=", 1) for w in words[1:]) == RUN.env()


def test_the_export_line_never_prints_a_password() -> None:
    """A WIRE_REDIS_URL with a password (given to `wire run`) is masked in the printed line."""
    secret = RunInfo(**{**asdict(RUN), "redis_url": "redis://:s3cret@10.0.0.5:6379/0"})
    assert "s3cret" not in secret.export_line() and "10.0.0.5:6379/0" in secret.export_line()


@pytest.mark.parametrize("host, url", [
    ("0.0.0.0", "http://127.0.0.1:9108/"),
    ("127.0.0.1", "http://127.0.0.1:9108/"),
    ("::", "http://[::1]:9108/"),
    ("fd00::5", "http://[fd00::5]:9108/"),
    ("wire.internal", "http://wire.internal:9108/"),
])
def test_the_console_url_is_one_a_browser_on_this_machine_opens(host: str, url: str) -> None:
    """WIRE_METRICS_HOST's wildcard addresses are shown as loopback; IPv6 addresses in brackets."""
    assert console_url(host, 9108) == url


def test_the_start_lines_say_where_everything_is(tmp_path: Path) -> None:
    """Console URL, the embedded Redis and its folder, the sources file and its count, the run file,
    and the export line on a line of its own."""
    sources = parse_sources("sources:\n- name: a\n  feeds: [https://a.example/f]\n"
                            "- name: b\n  feeds: [https://b.example/f]\n", RUN.sources)
    embedded = RedisProcess(process=None, port=35245, data_dir=tmp_path / "redis")  # type: ignore[arg-type]
    lines = start_lines(RUN, sources, embedded, Path("data/run.json"))
    assert lines == [
        "wire: console and metrics on http://127.0.0.1:9108/",
        f"wire: embedded Redis on redis://127.0.0.1:35245/0 (data in {tmp_path / 'redis'})",
        "wire: sources from /tmp/my sources.yaml (2 sources)",
        "wire: ops commands (status, explain, reingest, dlq) run here find this run in data/run.json; "
        "in another folder or shell, first:",
        "  export WIRE_REDIS_URL=redis://127.0.0.1:35245/0 WIRE_SOURCES='/tmp/my sources.yaml'",
    ]
    given = RunInfo(**{**asdict(RUN), "redis_url": "redis://:pw@10.0.0.5:6379/0"})
    assert start_lines(given, sources, None, Path("data/run.json"))[1] == \
        "wire: Redis redis://***:***@10.0.0.5:6379/0 (WIRE_REDIS_URL)"
