"""Redis out of memory (`maxmemory` + `noeviction`, as the compose file runs it) is an outage, not a failure.

A real throwaway redis-server gets a small `maxmemory`; a filler thread writes until Redis refuses
writes and keeps it there (every byte a worker frees is taken again) for a while, then deletes what it
wrote. Real workers (`wire run`, `wire worker`) must stay up through it, hold their work, and publish
every story once when memory is back.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import redis

from tests.support.cluster import Cluster
from tests.support.env import wire_env
from tests.support.helpers import http_get, wait_for
from tests.support.loopback import HTML, SiteServer
from tests.support.paths import ROOT
from tests.support.sites import STORIES, jsonld_page, news_site, news_sources
from worker.keys import Keys
from worker.ops.redis_server import RedisProcess, free_port, start_redis
from worker.queue.outage import is_oom, unavailable

pytestmark = pytest.mark.slow

HEADROOM = 24 * 1024 * 1024  # maxmemory above what the empty server uses: room for a run's queues and pages


class MemoryHog(threading.Thread):
    """Fills Redis until it refuses writes, then keeps it full until `release()` deletes the filler."""

    def __init__(self, port: int, prefix: str) -> None:
        super().__init__(daemon=True)
        self.client = redis.Redis(port=port)
        self.prefix = prefix
        self.full = threading.Event()
        self.refusals = 0
        self._stop_event = threading.Event()
        self._count = 0

    def run(self) -> None:
        size = 256 * 1024
        while not self._stop_event.is_set():
            try:
                self.client.set(f"{self.prefix}:hog:{self._count}", b"x" * size)
                self._count += 1
            except redis.exceptions.OutOfMemoryError:
                self.refusals += 1
                if size > 64:
                    size //= 4  # top up in ever smaller pieces: stay right at the limit
                    continue
                self.full.set()
                self._stop_event.wait(0.02)

    def release(self) -> None:
        self._stop_event.set()
        self.join(10)
        for start in range(0, self._count, 500):
            self.client.delete(*[f"{self.prefix}:hog:{i}" for i in range(start, min(start + 500, self._count))])


def limited_redis(tmp_path: Path) -> tuple[RedisProcess, redis.Redis]:
    """A throwaway redis-server (noeviction, as shipped) whose maxmemory leaves `HEADROOM` for wire."""
    proc = start_redis(tmp_path / "redis", appendonly=False)
    client = redis.Redis(port=proc.port)
    assert client.config_get("maxmemory-policy") == {"maxmemory-policy": "noeviction"}
    client.config_set("maxmemory", int(client.info("memory")["used_memory"]) + HEADROOM)
    return proc, client


def run_env(redis_url: str, prefix: str, sources: Path, tmp_path: Path, **extra: str) -> dict[str, str]:
    return wire_env(redis_url=redis_url, key_prefix=prefix, sources=sources, allow_private_addresses=1,
                    log_format="json", data_dir=tmp_path / "data", **extra)


def refuses_writes(client: redis.Redis, prefix: str) -> bool:
    try:
        client.set(f"{prefix}:probe", 1, ex=60)
    except redis.OutOfMemoryError:
        return True
    return False


def _published(client: redis.Redis, keys: Keys) -> list[str]:
    return [json.loads(f[b"data"])["canonical_url"] for _, f in client.xrange(keys.items_stream)]


def test_oom_mid_run_keeps_every_process_up_and_loses_nothing(tmp_path: Path, prefix: str) -> None:
    """`wire run` (fetch worker, prefork process worker, beat, serve) on a Redis driven out of memory
    mid-run for 30 s: no process exits, tasks that meet the full Redis are handed back (not failed, not
    acked), /healthz says 503 with the reason, and once memory is freed every story is published exactly
    once with no dead letter."""
    server = SiteServer()
    n = 32
    site = news_site(server, n, delay=0.1, address="127.0.0.13")
    sources = tmp_path / "sources.yaml"
    sources.write_text(news_sources(site))
    redis_proc, client = limited_redis(tmp_path)
    keys = Keys.for_prefix(prefix)
    port = free_port()
    env = run_env(redis_proc.url, prefix, sources, tmp_path, WIRE_METRICS_PORT=str(port),
                  WIRE_METRICS_HOST="127.0.0.1", WIRE_FETCH_CONCURRENCY="4", WIRE_PROCESS_CONCURRENCY="1",
                  WIRE_FETCH_BATCH="4", WIRE_PROCESS_BATCH="1")  # small tasks: both stages busy when Redis fills
    log_path = tmp_path / "run.log"
    log = open(log_path, "wb")  # noqa: SIM115 - closed with the process
    proc = subprocess.Popen([sys.executable, "-m", "worker.ops.cli", "run"], env=env, cwd=ROOT,
                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    hog = MemoryHog(redis_proc.port, prefix)

    def output() -> str:
        return log_path.read_text(errors="replace")

    try:
        # fill Redis while process tasks wait in their queue if we can catch that moment, so that both
        # stages meet the full Redis (fetch tasks are in flight either way)
        wait_for(lambda: (client.xlen(keys.items_stream) >= 1 and client.llen("process") > 0)
                 or client.xlen(keys.items_stream) >= n // 2 or proc.poll() is not None, timeout=90,
                 interval=0.01, what="the first stories")
        assert proc.poll() is None, output()
        hog.start()
        assert hog.full.wait(30), "Redis never refused a write"
        oom_at = time.monotonic()
        during = client.xlen(keys.items_stream)
        health = wait_for(lambda: (lambda got: got if got[0] == 503 else None)(
            http_get(f"http://127.0.0.1:{port}/healthz")), timeout=15, what="/healthz to answer 503")
        assert "out of memory" in health[1], health
        while time.monotonic() - oom_at < 30:
            assert proc.poll() is None, f"wire run exited under OOM:\n{output()[-6000:]}"
            time.sleep(0.5)
        assert "exited with status" not in output(), output()[-6000:]
        handed_back = {json.loads(line).get("stage") for line in output().splitlines()
                       if line.startswith("{") and "redis unavailable: task requeued" in line}
        hog.release()
        wait_for(lambda: client.xlen(keys.items_stream) >= n or proc.poll() is not None, timeout=120,
                 what=f"all {n} stories once memory is back")
        time.sleep(2.0)  # anything published twice would land now
        urls = _published(client, keys)
        assert proc.poll() is None, output()[-6000:]
        assert "exited with status" not in output(), output()[-6000:]
        assert len(urls) == n and len(set(urls)) == n, (len(urls), len(set(urls)), during)
        assert client.xlen(keys.dead_stream) == 0, client.xrange(keys.dead_stream)
        print(f"stages whose tasks were handed back while Redis was full: {sorted(handed_back)}")
        assert handed_back, "no task met the full Redis"
        wait_for(lambda: http_get(f"http://127.0.0.1:{port}/healthz")[0] == 200, timeout=30,
                 what="/healthz 200 again")
    finally:
        if hog.is_alive():
            hog.release()
        if proc.poll() is None:
            os.killpg(proc.pid, 2)
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, 9)
                proc.wait()
        log.close()
        redis_proc.stop()
        server.stop()
        print(output()[-8000:])


def _one_story_site(server: SiteServer, address: str) -> tuple[object, str]:
    site = server.add("late", address)
    site.routes["/robots.txt"] = (404, {}, "")
    site.routes["/story"] = (200, HTML, jsonld_page(STORIES["orchard-frost-harvest"], "x"))
    site.routes["/feed"] = (200, {"Content-Type": "application/rss+xml"},
                            f'<rss version="2.0"><channel><item><link>{site.base}/story</link></item></channel></rss>')
    return site, f"sources:\n- name: late\n  feeds: ['{site.base}/feed']\n  interval: 1h\n  rate: 20\n"


def _wire(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "worker.ops.cli", *args], env=env, cwd=ROOT, capture_output=True,
                          text=True, timeout=60)


def test_worker_and_beat_started_while_redis_is_full_wait_then_consume(tmp_path: Path, prefix: str) -> None:
    """Redis already out of memory: `wire worker` and `wire beat` stay up and say once why they wait,
    `wire serve` starts and answers /healthz 503 naming the memory, `wire status` (text and JSON) and
    /metrics report it; once memory is freed the story is published."""
    server = SiteServer()
    _, yaml = _one_story_site(server, "127.0.0.14")
    sources = tmp_path / "sources.yaml"
    sources.write_text(yaml)
    redis_proc, client = limited_redis(tmp_path)
    keys = Keys.for_prefix(prefix)
    port = free_port()
    env = run_env(redis_proc.url, prefix, sources, tmp_path)
    cluster = Cluster(env, tmp_path)
    hog = MemoryHog(redis_proc.port, prefix)
    try:
        hog.start()
        assert hog.full.wait(30), "Redis never refused a write"
        worker = cluster.start("worker", "worker", "--queues", "discover,fetch,process", "--pool", "threads",
                               "--concurrency", "2")
        beat = cluster.start("beat", "beat")
        serve = cluster.start("serve", "serve", "--host", "127.0.0.1", "--port", str(port))
        worker_log, beat_log = tmp_path / "worker.log", tmp_path / "beat.log"
        cluster.wait(lambda: "waiting for redis" in worker_log.read_text(errors="replace")
                     and "waiting for redis" in beat_log.read_text(errors="replace"), timeout=30,
                     what="worker and beat to say they wait")
        health = cluster.wait(lambda: (lambda got: got if got[0] == 503 else None)(
            http_get(f"http://127.0.0.1:{port}/healthz")), timeout=30, what="/healthz 503")
        assert "redis out of memory" in health[1] and "maxmemory" in health[1], health
        doc = json.loads(_wire(env, "status", "--json").stdout)
        assert doc["redis"]["oom"] is True and doc["redis"]["maxmemory"] > 0, doc["redis"]
        assert doc["redis"]["used_memory"] > doc["redis"]["maxmemory"] - 1024 * 1024, doc["redis"]
        assert doc["redis"]["oom_errors"] > 0, doc["redis"]
        assert "OUT OF MEMORY" in _wire(env, "status").stdout
        metrics = http_get(f"http://127.0.0.1:{port}/metrics")[1]
        assert "wire_redis_out_of_memory 1.0" in metrics, metrics[-2000:]
        assert "wire_redis_memory_max_bytes" in metrics and "wire_redis_oom_errors_total" in metrics
        time.sleep(6.0)  # long enough for a crash loop to show, or for a line every few seconds
        assert worker.poll() is None and beat.poll() is None and serve.poll() is None, cluster.logs()
        for log_file in (worker_log, beat_log):
            lines = [ln for ln in log_file.read_text(errors="replace").splitlines() if "waiting for redis" in ln]
            assert len(lines) == 1, lines
            line = json.loads(lines[0])
            assert line["reason"] == "out of memory" and "maxmemory" in line["error"], line
        hog.release()
        cluster.wait(lambda: client.xlen(keys.items_stream) == 1, timeout=60, what="the story to be published")
        assert "redis takes writes: starting" in worker_log.read_text(errors="replace")
        assert json.loads(_wire(env, "status", "--json").stdout)["redis"]["oom"] is False
        cluster.wait(lambda: http_get(f"http://127.0.0.1:{port}/healthz")[0] == 200, timeout=30,
                     what="/healthz 200 once memory is freed")
    finally:
        if hog.is_alive():
            hog.release()
        cluster.stop()
        redis_proc.stop()
        server.stop()


def test_oom_errors_count_as_redis_unavailable(tmp_path: Path) -> None:
    """The errors a full Redis gives (a command, a transaction, a script) are an outage, not a task failure."""
    redis_proc, client = limited_redis(tmp_path)
    hog = MemoryHog(redis_proc.port, "oomunit")
    try:
        hog.start()
        assert hog.full.wait(30)
        pipe = client.pipeline(transaction=True)
        pipe.delete("a")
        pipe.lpush("q", "x")
        caught = []
        for call in (lambda: client.set("k", "v"), pipe.execute,
                     lambda: client.eval("return redis.call('SET', KEYS[1], 'v')", 1, "k")):
            with pytest.raises(redis.ResponseError) as info:
                call()
            caught.append(info.value)
        assert all(is_oom(e) and unavailable(e) for e in caught), caught
        # Redis 6.2 wraps a script's OOM in a plain ERR
        wrapped = redis.ResponseError("Error running script (call to f_1): @user_script:1: -OOM command not "
                                      "allowed when used memory > 'maxmemory'.")
        assert unavailable(wrapped)
        assert not unavailable(redis.ResponseError("WRONGTYPE Operation against a key"))
    finally:
        hog.release()
        redis_proc.stop()


def test_beat_sends_again_an_entry_redis_refused(tmp_path: Path, prefix: str) -> None:
    """A discovery beat could not send (Redis full) is sent on the next tick once Redis takes writes,
    instead of waiting a whole interval (Celery moves an entry to its next run before sending it)."""
    from tests.support.helpers import test_settings
    from worker.queue.app import create_app
    from worker.queue.beat import WireScheduler
    from worker.settings import parse_sources

    redis_proc, client = limited_redis(tmp_path)
    hog = MemoryHog(redis_proc.port, prefix)
    settings = test_settings(redis_proc.url, prefix, WIRE_DATA_DIR=str(tmp_path / "data"))
    app = create_app(settings, parse_sources("sources:\n- name: one\n  feeds: [https://one.example/feed]\n"
                                             "  interval: 1h\n", "s.yaml"))
    sched = WireScheduler(app=app, schedule_filename=str(tmp_path / "schedule"))
    try:
        for entry in sched.schedule.values():
            entry.last_run_at = app.now()  # nothing due: only the refused entry can be sent
        entry = sched.schedule["discover:one"]
        producer = sched.producer
        hog.start()
        assert hog.full.wait(30)
        sched.apply_entry(entry, producer=producer)  # refused by Redis: kept, not raised
        assert client.llen("discover") == 0
        hog.release()
        sched.tick()
        sent = [json.loads(m) for m in client.lrange("discover", 0, -1)]
        assert [(m["headers"]["task"], m["headers"]["argsrepr"]) for m in sent] == [("wire.discover", "['one']")]
    finally:
        if hog.is_alive():
            hog.release()
        sched.close()
        app.close()
        redis_proc.stop()


def test_broker_acks_and_requeues_survive_a_full_redis(tmp_path: Path, prefix: str) -> None:
    """With Redis full: an ack still removes its message from unacked (kombu's MULTI was refused, and the
    error stopped the worker), a requeue puts its message straight back on its queue (the script deletes
    before it writes, which Redis allows when full), and the restore sweep raises nothing."""
    from worker.queue.app import create_app
    from worker.settings import Settings, SourcesConfig

    redis_proc, client = limited_redis(tmp_path)
    hog = MemoryHog(redis_proc.port, prefix)
    app = create_app(Settings.from_env({"WIRE_REDIS_URL": redis_proc.url}), SourcesConfig(path="none.yaml", sources=()))
    queue = f"{prefix}-q"
    try:
        with app.connection_for_write() as conn:
            channel = conn.default_channel
            for n in (1, 2):
                conn.Producer().publish({"n": n}, routing_key=queue, exchange="", serializer="json")
            acked, requeued = channel.basic_get(queue), channel.basic_get(queue)
            assert client.hlen("unacked") == 2
            hog.start()
            assert hog.full.wait(30)
            wait_for(lambda: refuses_writes(client, prefix), timeout=30, what="redis to refuse writes")
            acked.ack()
            requeued.reject(requeue=True)
            channel.qos.restore_visible(num=None, interval=1)  # the periodic sweep: must not raise either
            assert client.hlen("unacked") == 0 and client.llen(queue) == 1
            hog.release()
            again = channel.basic_get(queue)
            assert again is not None and again.payload == {"n": 2} and again.delivery_info["redelivered"]
            again.ack()
    finally:
        if hog.is_alive():
            hog.release()
        app.close()
        redis_proc.stop()
