"""The shipped Prometheus rules and Grafana dashboard are valid and use only metrics wire exports."""

from __future__ import annotations

import json
import re
import shutil
import subprocess

import pytest

from tests.support.paths import ROOT
from worker.metrics import COUNTERS, HISTOGRAMS

GAUGES = {"wire_queue_length", "wire_stream_length", "wire_stream_pending", "wire_stream_lag",
          "wire_source_last_success_timestamp_seconds", "wire_redis_memory_used_bytes",
          "wire_redis_memory_max_bytes", "wire_redis_out_of_memory", "wire_redis_oom_errors_total"}
KNOWN = set(COUNTERS) | GAUGES | {f"{h}_{s}" for h in HISTOGRAMS for s in ("bucket", "sum", "count")}


def metric_names(text: str) -> set[str]:
    return set(re.findall(r"\bwire_[a-z_]+\b", text))


def test_alert_rules_pass_promtool() -> None:
    """`promtool check rules` accepts config/prometheus/alerts.yml."""
    if not shutil.which("promtool"):
        pytest.skip("promtool not installed")
    proc = subprocess.run(["promtool", "check", "rules", str(ROOT / "config/prometheus/alerts.yml")],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_alerts_and_dashboard_use_exported_metrics() -> None:
    """Every wire_* name in the rules and the dashboard is a metric wire exports."""
    alerts = (ROOT / "config/prometheus/alerts.yml").read_text()
    dashboard = json.loads((ROOT / "config/grafana/wire.json").read_text())
    exprs = " ".join(t["expr"] for p in dashboard["panels"] for t in p["targets"])
    assert metric_names(alerts) <= KNOWN, metric_names(alerts) - KNOWN
    assert metric_names(exprs) <= KNOWN, metric_names(exprs) - KNOWN
    for required in ("WireSourceStale", "WireDeadLettersGrowing", "WireQueueDepthRising", "WireNotConsuming"):
        assert f"alert: {required}" in alerts
