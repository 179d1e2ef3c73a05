"""A `wire` process given a broken sources file: it names the file, source and field, and exits 2."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.support.env import wire_env
from tests.support.paths import ROOT


def test_sources_check_exits_2_naming_file_source_and_field(tmp_path: Path) -> None:
    """`wire sources check` on a broken file prints file, source and field, and exits with status 2."""
    bad = tmp_path / "sources.yaml"
    bad.write_text("sources:\n- name: news\n  feeds: [http://x/f]\n  interval: often\n")
    proc = subprocess.run([sys.executable, "-m", "worker.ops.cli", "sources", "check", str(bad)],
                          capture_output=True, text=True, cwd=ROOT, env=wire_env())
    assert proc.returncode == 2
    assert f"{bad}: source 'news'.interval:" in proc.stderr


def test_run_refuses_an_invalid_sources_file(tmp_path: Path) -> None:
    """`wire run` stops before starting anything when sources.yaml is invalid (exit status 2)."""
    bad = tmp_path / "sources.yaml"
    bad.write_text("sources:\n- name: news\n  sitemaps: [not-a-url]\n")
    env = wire_env(sources=bad, data_dir=tmp_path / "data")
    proc = subprocess.run([sys.executable, "-m", "worker.ops.cli", "run"], capture_output=True, text=True,
                          cwd=ROOT, env=env, timeout=60)
    assert proc.returncode == 2
    assert "source 'news'.sitemaps[0]" in proc.stderr
    assert not (tmp_path / "data").exists()
