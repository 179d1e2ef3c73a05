"""Configuration: WIRE_* variables and sources.yaml validation, and `wire sources check`."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from tests.support.paths import ROOT
from worker.errors import ConfigError
from worker.ops.cli import cli
from worker.settings import Settings, load_sources, parse_duration, parse_sources


def test_default_sources_file_is_valid() -> None:
    """The shipped config/sources.yaml passes validation."""
    config = load_sources(ROOT / "config" / "sources.yaml")
    assert len(config.sources) >= 5
    assert all(s.feeds for s in config.sources)


@pytest.mark.parametrize("text, where", [
    ("sources:\n- name: a\n  feeds: [ftp://x/feed]\n", "source 'a'.feeds[0]"),
    ("sources:\n- name: a\n  feeds: [http://x/f]\n  interval: soon\n", "source 'a'.interval"),
    ("sources:\n- name: a\n  feeds: [http://x/f]\n  rate: -1\n", "source 'a'.rate"),
    ("sources:\n- name: a\n  feeds: [http://x/f]\n  allow: ['(']\n", "source 'a'.allow[0]"),
    ("sources:\n- name: a\n  feeds: [http://x/f]\n  colour: red\n", "source 'a'.colour"),
    ("sources:\n- name: a\n  listings: [{url: 'http://x/', links: 'a[['}]\n", "source 'a'.listings[0].links"),
    ("sources:\n- name: a\n  feeds: [http://x/f]\n  rules: {body: '##'}\n", "source 'a'.rules.body"),
    ("sources:\n- name: a\n  feeds: [http://x/f]\n  rules: {strip_text: ['[']}\n", "source 'a'.rules.strip_text[0]"),
    ("sources:\n- name: A B\n  feeds: [http://x/f]\n", "source 'A B'.name"),
    ("sources:\n- feeds: [http://x/f]\n", "sources[0].name"),
    ("sources:\n- name: a\n", "source 'a'"),
    ("sources:\n- name: a\n  feeds: [http://x/f]\n- name: a\n  feeds: [http://y/f]\n", "source 'a'.name"),
    ("sources: []\n", "sources"),
    ("sources:\n- name: a\n  feeds: [http://x/f]\nroutes:\n- {stream: 'x', language: english}\n", "routes[0].language"),
    ("sources:\n- name: a\n  feeds: [http://x/f]\nroutes:\n- {stream: 'x', source: b}\n", "routes[0].source"),
    ("defaults:\n  feeds: [http://x/f]\nsources:\n- name: a\n  feeds: [http://x/f]\n", "defaults.feeds"),
    ("sources: [\n", "line"),
])
def test_invalid_sources_name_file_source_and_field(text: str, where: str) -> None:
    """Each kind of mistake is reported with the file name and the exact field."""
    with pytest.raises(ConfigError) as info:
        parse_sources(text, "conf/sources.yaml")
    message = str(info.value)
    assert message.startswith("conf/sources.yaml: ")
    assert where in message


def test_defaults_apply_to_every_source() -> None:
    """A `defaults` interval and deny list reach each source unless it overrides them."""
    config = parse_sources(
        "defaults:\n  interval: 1h\n  deny: ['/video/']\nsources:\n"
        "- name: a\n  feeds: [http://x/f]\n- name: b\n  feeds: [http://y/f]\n  interval: 30s\n", "s.yaml")
    a, b = config.sources
    assert a.interval == 3600 and b.interval == 30
    assert not a.accepts("http://x/video/1") and a.accepts("http://x/news/1")


def test_durations() -> None:
    """Durations accept s/m/h/d suffixes and bare seconds, and refuse nonsense."""
    assert parse_duration("30s") == 30 and parse_duration("5m") == 300 and parse_duration("1h") == 3600
    assert parse_duration(45) == 45
    for bad in ("", "5 minutes", "-1s", "0"):
        with pytest.raises(ValueError):
            parse_duration(bad)


def test_env_errors_name_the_variable() -> None:
    """A bad WIRE_ value is reported with the variable's name."""
    with pytest.raises(ConfigError, match="WIRE_METRICS_PORT"):
        Settings.from_env({"WIRE_METRICS_PORT": "http"})
    with pytest.raises(ConfigError, match="WIRE_ALLOW_PRIVATE_ADDRESSES"):
        Settings.from_env({"WIRE_ALLOW_PRIVATE_ADDRESSES": "maybe"})
    assert Settings.from_env({}).allow_private_addresses is False


def test_task_events_default_on_and_can_be_turned_off() -> None:
    """Celery task events are on unless WIRE_TASK_EVENTS says otherwise; a bad value names the variable."""
    from worker.queue.app import celery_config

    url = {"WIRE_REDIS_URL": "redis://127.0.0.1:1/0"}  # never connected to: only the config is built
    on = celery_config(Settings.from_env(url))
    off = celery_config(Settings.from_env({**url, "WIRE_TASK_EVENTS": "false"}))
    assert (on["worker_send_task_events"], on["task_send_sent_event"]) == (True, True)
    assert (off["worker_send_task_events"], off["task_send_sent_event"]) == (False, False)
    with pytest.raises(ConfigError, match="WIRE_TASK_EVENTS"):
        Settings.from_env({"WIRE_TASK_EVENTS": "sometimes"})


def test_sources_check_accepts_a_valid_file() -> None:
    """`wire sources check` on the shipped file succeeds."""
    result = CliRunner().invoke(cli, ["sources", "check", str(ROOT / "config" / "sources.yaml")])
    assert result.exit_code == 0, result.output
    assert "OK" in result.output


