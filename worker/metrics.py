"""Prometheus metrics, aggregated in Redis so no process's counts are lost.

Celery prefork children come and go (`worker_max_tasks_per_child`, crashes,
scaling); counters kept in process memory die with them. Every increment is
therefore an `HINCRBYFLOAT` on one Redis hash, sent in the same pipeline as
the page's other writes, and `wire serve` renders the hash plus live gauges
(queue depths, stream lengths, consumer lag) through prometheus_client.
Histograms are stored as non-cumulative bins (`_bin`) and made cumulative
when rendered; cumulative `_bucket` fields left by older workers are added in.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import redis

# name -> (type, help, label names)
COUNTERS: dict[str, tuple[str, tuple[str, ...]]] = {
    "wire_pages_fetched_total": ("Pages fetched, by HTTP status (or error class).", ("source", "status")),
    "wire_items_published_total": ("Story events published to the items stream.", ("source", "event")),
    "wire_duplicates_total": ("Pages recognised as duplicates of a known story.", ("source", "kind")),
    "wire_extract_failures_total": ("Pages that did not yield an article, by reason.", ("source", "reason")),
    "wire_dead_letters_total": ("Work items moved to the dead-letter stream.", ("stage",)),
    "wire_robots_denied_total": ("Fetches refused by robots.txt.", ("source",)),
    "wire_discovered_total": ("New candidate URLs found by discovery.", ("source",)),
    "wire_skipped_total": ("Pages skipped with a recorded reason.", ("source", "reason")),
    # CPU time of the extracting thread: wire_extract_seconds is wall time, which on a busy
    # machine also counts waiting for a core; this is what extraction costs the machine
    "wire_extract_cpu_seconds_total": ("CPU seconds spent extracting pages.", ()),
    # reason: heartbeat_expired (its consumer died), visibility_timeout (the last resort),
    # requeued (its own consumer handed it back: a pool child died, Redis went away), shutdown
    "wire_tasks_recovered_total": ("Unacked tasks put back on their queue, by reason.", ("queue", "reason")),
    "wire_broker_malformed_dropped_total": (
        "Payloads that were not Celery messages, dropped from the full unacked_malformed list.", ()),
}
HISTOGRAMS: dict[str, tuple[str, tuple[str, ...], tuple[float, ...]]] = {
    "wire_fetch_seconds": ("Time to fetch one page.", ("source",),
                           (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)),
    "wire_extract_seconds": ("Time to extract one page.", (),
                             (0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)),
}


def _field(name: str, labels: Mapping[str, str]) -> str:
    # '\x1f' cannot appear in label values we produce (they are config names and short reasons)
    return name + "\x1e" + "\x1f".join(f"{k}={v}" for k, v in sorted(labels.items()))


def _parse_field(raw: str) -> tuple[str, dict[str, str]]:
    name, _, rest = raw.partition("\x1e")
    labels = dict(part.split("=", 1) for part in rest.split("\x1f") if part)
    return name, labels


class MetricsBatch:
    """Increments collected during one unit of work, flushed in one round trip."""

    def __init__(self) -> None:
        self.values: dict[str, float] = defaultdict(float)

    def inc(self, name: str, value: float = 1.0, **labels: str) -> None:
        if name not in COUNTERS:
            raise KeyError(f"unknown counter {name}")
        self.values[_field(name, labels)] += value

    def observe(self, name: str, seconds: float, **labels: str) -> None:
        """One observation: its bin, the sum and the count (three fields, whatever the bucket count).

        Bins are not cumulative: `wire serve` adds them up into Prometheus'
        cumulative buckets when it renders, so an observation costs three
        increments instead of one per bucket above it (twelve for a fast page).
        """
        _, _, buckets = HISTOGRAMS[name]
        le = next((repr(bound) for bound in buckets if seconds <= bound), "+Inf")
        self.values[_field(name + "_bin", {**labels, "le": le})] += 1
        self.values[_field(name + "_sum", labels)] += seconds
        self.values[_field(name + "_count", labels)] += 1

    def flush_into(self, pipe: Any, key: str) -> None:
        """Queue the increments on a Redis pipeline (the caller executes it)."""
        for f, v in self.values.items():
            if v:
                pipe.hincrbyfloat(key, f, v)
        self.values.clear()

    def flush(self, client: redis.Redis, key: str) -> None:
        if not self.values:
            return
        pipe = client.pipeline(transaction=False)
        self.flush_into(pipe, key)
        pipe.execute()


def read_samples(client: redis.Redis, key: str) -> Iterator[tuple[str, dict[str, str], float]]:
    for raw_field, raw_value in client.hgetall(key).items():
        name, labels = _parse_field(raw_field.decode() if isinstance(raw_field, bytes) else raw_field)
        yield name, labels, float(raw_value)


def counter_totals(client: redis.Redis, key: str, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    """Current values of one counter by label set (used by status and tests)."""
    out: dict[tuple[tuple[str, str], ...], float] = {}
    for sample, labels, value in read_samples(client, key):
        if sample == name:
            out[tuple(sorted(labels.items()))] = value
    return out


def counter_sum(client: redis.Redis, key: str, name: str, **match: str) -> float:
    return sum(v for labels, v in counter_totals(client, key, name).items()
               if all(dict(labels).get(k) == want for k, want in match.items()))


def build_families(samples: Iterable[tuple[str, dict[str, str], float]]) -> list[Any]:
    """Turn stored samples into prometheus_client metric families (every metric of docs/contract.md present)."""
    from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily

    counters: dict[str, Any] = {}
    for name, (help_text, label_names) in COUNTERS.items():
        counters[name] = CounterMetricFamily(name.removesuffix("_total"), help_text, labels=list(label_names))
    hist_data: dict[str, dict[tuple[tuple[str, str], ...], dict[str, Any]]] = defaultdict(dict)
    for name, labels, value in samples:
        if name in counters:
            label_names = COUNTERS[name][1]
            counters[name].add_metric([labels.get(n, "") for n in label_names], value)
            continue
        for hname in HISTOGRAMS:
            if name.startswith(hname + "_"):
                part = name[len(hname) + 1:]
                le = labels.pop("le", None)
                entry = hist_data[hname].setdefault(tuple(sorted(labels.items())),
                                                    {"buckets": {}, "bins": {}, "sum": 0.0})
                if part == "bucket" and le is not None:  # cumulative, written by workers before bins
                    entry["buckets"][le] = value
                elif part == "bin" and le is not None:
                    entry["bins"][le] = value
                elif part == "sum":
                    entry["sum"] = value
                break
    families: list[Any] = list(counters.values())
    for hname, (help_text, label_names, bounds) in HISTOGRAMS.items():
        fam = HistogramMetricFamily(hname, help_text, labels=list(label_names))
        for label_key, entry in hist_data.get(hname, {}).items():
            labels = dict(label_key)
            buckets = []
            below = 0.0  # observations in the bins up to this bound
            for le in [repr(bound) for bound in bounds] + ["+Inf"]:
                below += entry["bins"].get(le, 0.0)
                buckets.append((le, entry["buckets"].get(le, 0.0) + below))
            fam.add_metric([labels.get(n, "") for n in label_names], buckets, entry["sum"])
        families.append(fam)
    return families

