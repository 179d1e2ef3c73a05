"""Operations end to end with real Celery processes: prefork counters, one active beat,
graceful SIGTERM, and the contract's consumer example on a live stream."""

from __future__ import annotations

import json
import os
import re
import signal
import time

import pytest
import redis

from tests.support.cluster import Cluster
from tests.support.helpers import wait_for
from tests.support.paths import ROOT
from tests.support.sites import news_site, use_site
from worker.keys import Keys
from worker.metrics import counter_sum

pytestmark = pytest.mark.slow
def stats(client: redis.Redis, keys: Keys) -> dict[str, int]:
    return {k.decode(): int(float(v)) for k, v in client.hgetall(keys.stats()).items()}


def test_prefork_children_counts_add_up(cluster: Cluster, cluster_env, site_server, prefix: str) -> None:  # noqa: F811
    """A prefork worker with 2 children processes N pages; the shared counters add up to N."""
    server, _ = site_server
    n = 40
    site = news_site(server, n)
    # pages fetched fast (rate 1000) and one per process task, so tasks queue up for both children: paced at
    # 50/s in batches, one child could keep up with all of them while the other idled
    use_site(cluster_env, site, rate=1000)
    cluster.env = {**cluster_env, "WIRE_PROCESS_BATCH": "1"}
    client = redis.Redis.from_url(cluster_env["WIRE_REDIS_URL"])
    keys = Keys.for_prefix(prefix)
    cluster.start("fetch", "worker", "--queues", "discover,fetch", "--pool", "threads", "--concurrency", "4")
    cluster.start("process", "worker", "--queues", "process", "--pool", "prefork", "--concurrency", "2")
    cluster.start("beat", "beat")
    cluster.wait(lambda: stats(client, keys).get("published", 0) >= n, timeout=120, what=f"{n} published")
    m = keys.metrics()
    assert counter_sum(client, m, "wire_pages_fetched_total", source="news", status="200") == n
    assert counter_sum(client, m, "wire_items_published_total", source="news", event="new") == n
    assert client.xlen(keys.items_stream) == n
    # a regex, not json.loads: the two children append to one log file and a line can be cut by the other's
    pids = {int(pid) for line in (cluster.log_dir / "process.log").read_text().splitlines()
            if '"stage": "process"' in line for pid in re.findall(r'"pid": (\d+)', line)}
    assert len(pids) == 2, f"expected both prefork children to work, saw pids {pids}"


def test_only_one_of_two_beats_schedules(cluster: Cluster, cluster_env, site_server, prefix: str) -> None:  # noqa: F811
    """Two beats against one Redis send each periodic discovery once, not twice."""
    server, _ = site_server
    use_site(cluster_env, news_site(server, 1), interval="2s")
    client = redis.Redis.from_url(cluster_env["WIRE_REDIS_URL"])
    started = time.monotonic()
    cluster.start("beat1", "beat")
    # each beat with its own schedule file, as in two containers: the test is about the Redis lock
    cluster.env = {**cluster_env, "WIRE_DATA_DIR": cluster_env["WIRE_DATA_DIR"] + "-beat2"}
    cluster.start("beat2", "beat")

    def discover_messages() -> int:
        names = [json.loads(m)["headers"]["task"] for m in client.lrange("discover", 0, -1)]
        return names.count("wire.discover")

    cluster.wait(lambda: discover_messages() >= 3, timeout=30, what="three discovery tasks")  # logs on failure
    time.sleep(4.0)  # let a second active beat, if there were one, show itself
    elapsed = time.monotonic() - started
    sent = discover_messages()
    # one beat: the first at start, then one per 2 s interval
    assert sent <= elapsed / 2 + 2, f"{sent} discovery tasks in {elapsed:.1f}s: more than one beat scheduling"
    logs = cluster.logs()
    assert len(re.findall(r"beat lock acquired", logs)) == 1, logs


def test_sigterm_finishes_in_flight_work_and_loses_nothing(cluster: Cluster, cluster_env, site_server,  # noqa: F811
                                                           prefix: str) -> None:
    """SIGTERM during a batch: in-flight fetches finish or go back to the queue; after a restart all N are published once."""
    server, _ = site_server
    n = 12
    site = news_site(server, n, delay=1.0, address="127.0.0.9")
    use_site(cluster_env, site)
    client = redis.Redis.from_url(cluster_env["WIRE_REDIS_URL"])
    keys = Keys.for_prefix(prefix)
    worker = cluster.start("worker1", "worker", "--queues", "discover,fetch,process", "--pool", "threads",
                           "--concurrency", "3")
    cluster.start("beat", "beat")
    wait_for(lambda: len([r for r in server.requests(site.name) if r.path.startswith("/news/")]) >= 4,
             timeout=60, what="fetches in flight")
    os.killpg(worker.pid, signal.SIGTERM)
    assert worker.wait(60) == 0
    done_before = stats(client, keys).get("published", 0)
    assert done_before < n  # the batch was really interrupted
    cluster.start("worker2", "worker", "--queues", "discover,fetch,process", "--pool", "threads",
                  "--concurrency", "3")
    cluster.wait(lambda: client.xlen(keys.items_stream) >= n, timeout=120, what=f"all {n} stories")
    time.sleep(1.0)
    items = [json.loads(f[b"data"]) for _, f in client.xrange(keys.items_stream)]
    assert len(items) == n and len({i["canonical_url"] for i in items}) == n


CONSUMER_BLOCK = re.compile(r"```python\n(# consumer example.*?)```", re.S)


def test_contract_consumer_example_reads_a_live_stream(r: redis.Redis, redis_url: str, prefix: str) -> None:
    """docs/contract.md's consumer (XREADGROUP, XACK, XAUTOCLAIM) runs against a live stream as written."""
    code = CONSUMER_BLOCK.search((ROOT / "docs" / "contract.md").read_text())
    assert code, "docs/contract.md has no consumer example block"
    stream = f"{prefix}:items"
    for i in range(3):
        r.xadd(stream, {"id": str(i), "event": "new", "story_id": f"s{i}", "version": "1",
                        "data": json.dumps({"title": f"t{i}", "body": "b"})})
    # a consumer that crashed holding one entry: the example must reclaim it
    r.xgroup_create(stream, "search-indexer", id="0")
    r.xreadgroup("search-indexer", "dead-consumer", {stream: ">"}, count=1)
    seen: list[dict] = []
    namespace: dict = {}
    exec(compile(code.group(1), "docs/contract.md consumer example", "exec"), namespace)
    namespace["consume"](r, stream, "search-indexer", "live-consumer", seen.append, min_idle_ms=0, rounds=2)
    assert sorted(item["title"] for item in seen) == ["t0", "t1", "t2"]
    summary = r.xpending(stream, "search-indexer")
    assert summary["pending"] == 0
