"""A `wire` process given a broken sources file or data folder: it names the file or variable, and exits 2."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from tests.support.container import as_unprivileged
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


def test_beat_names_a_data_dir_it_cannot_create(tmp_path: Path) -> None:
    """`wire beat` whose WIRE_DATA_DIR cannot be made says so in one line naming the variable (exit status 2),
    before it waits for Redis; a container with a wrong data folder logs why it restarts."""
    (tmp_path / "file").write_text("")
    sources = tmp_path / "sources.yaml"
    sources.write_text("sources:\n- name: news\n  feeds: [http://x/f]\n")
    env = wire_env(sources=sources, data_dir=tmp_path / "file" / "data", redis_url="redis://127.0.0.1:1/0")
    proc = subprocess.run([sys.executable, "-m", "worker.ops.cli", "beat"], capture_output=True, text=True,
                          cwd=ROOT, env=env, timeout=60)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.startswith("error: environment: WIRE_DATA_DIR: cannot create"), proc.stderr
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1, proc.stderr


def test_beat_names_a_data_dir_it_may_not_write() -> None:
    """`wire beat` as an unprivileged user whose WIRE_DATA_DIR exists but is not its own (an image that
    forgot to give /data to its user) exits 2 with one line naming the variable."""
    root = Path(tempfile.mkdtemp(prefix="wire-datadir-"))  # not under pytest's folder, which is the test's alone
    root.chmod(0o755)
    data = root / "data"
    try:
        sources = root / "sources.yaml"
        sources.write_text("sources:\n- name: news\n  feeds: [http://x/f]\n")
        data.mkdir(mode=0o555)
        env = {**wire_env(sources=sources, data_dir=data, redis_url="redis://127.0.0.1:1/0"), "PYTHONPATH": str(ROOT)}
        proc = subprocess.run(as_unprivileged([sys.executable, "-m", "worker.ops.cli", "beat"]),
                              capture_output=True, text=True, cwd=root, env=env, timeout=60)
    finally:
        if data.exists():
            data.chmod(0o755)
        shutil.rmtree(root)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.startswith(f"error: environment: WIRE_DATA_DIR: '{data}' is not writable"), proc.stderr
