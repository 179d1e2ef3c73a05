"""`wire serve`: the console at `/`, /metrics, /healthz, /status and POST /reingest over plain HTTP.

The standard library's HTTP handler is enough for a scrape every few seconds
and an occasional admin call; it keeps the image small and has no framework
to patch. The server around it (worker.httpserver) reads each request whole
within a deadline before a thread of a fixed pool answers it, and caps open
connections; bodies are capped and every error is a JSON answer, so a flood
of bad, slow or idle connections costs no more than a bounded set of threads.
"""

from __future__ import annotations

import hmac
import json
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler
from typing import Any

import redis
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from .. import metrics
from ..console import activity
from ..console import handlers as console
from ..errors import WorkerError
from ..logs import get_logger
from ..pipeline.deps import Deps
from ..settings import require_strong_admin_token
from . import dlq, peers, ratelimit, reingest, status
from .httpserver import BoundedHTTPServer

log = get_logger("wire.serve")
MAX_BODY = 1024 * 1024
BEARER_FAILURES_PER_MINUTE = 10  # wrong tokens on POST /reingest, per client (worker.peers)
REINGEST_PER_MINUTE = 60  # accepted POST /reingest requests, all clients together


class _Collector:
    """Renders the counters stored in Redis plus live gauges at scrape time."""

    def __init__(self, deps: Deps) -> None:
        self.deps = deps

    def collect(self) -> Any:
        d = self.deps
        yield from metrics.build_families(metrics.read_samples(d.redis, d.keys.metrics()))
        doc = status.collect(d.redis, d.keys, d.sources, d.settings)
        q = GaugeMetricFamily("wire_queue_length", "Tasks waiting in each Celery queue (all priority lists).",
                              labels=["queue"])
        for name, depth in doc["queues"].items():
            q.add_metric([name], depth)
        yield q
        length = GaugeMetricFamily("wire_stream_length", "Entries in each output stream.", labels=["stream"])
        pending = GaugeMetricFamily("wire_stream_pending", "Entries delivered to a consumer group but not acked.",
                                    labels=["stream", "group"])
        lag = GaugeMetricFamily("wire_stream_lag", "Entries not yet delivered to a consumer group.",
                                labels=["stream", "group"])
        for s in doc["streams"] + [{"stream": d.keys.dead_stream, "length": doc["dead_letters"], "groups": []}]:
            length.add_metric([s["stream"]], s["length"])
            for g in s["groups"]:
                pending.add_metric([s["stream"], g["group"]], g["pending"])
                if g["lag"] is not None:
                    lag.add_metric([s["stream"], g["group"]], g["lag"])
        yield length
        yield pending
        yield lag
        last = GaugeMetricFamily("wire_source_last_success_timestamp_seconds",
                                 "Unix time of the last successful discovery of each source.", labels=["source"])
        for src in doc["sources"]:
            if src["last_success"] is not None:
                last.add_metric([src["name"]], src["last_success"])
        yield last
        yield from redis_memory_families(doc["redis"])


def redis_memory_families(mem: dict[str, Any]) -> Any:
    """Redis' memory against its limit, and the writes it refused for lack of memory (the alerts' inputs)."""
    used = GaugeMetricFamily("wire_redis_memory_used_bytes", "Memory Redis uses (INFO used_memory).")
    used.add_metric([], mem["used_memory"])
    limit = GaugeMetricFamily("wire_redis_memory_max_bytes", "Redis maxmemory; 0 means no limit.")
    limit.add_metric([], mem["maxmemory"])
    oom = GaugeMetricFamily("wire_redis_out_of_memory", "1 while Redis is over maxmemory and refuses writes.")
    oom.add_metric([], 1 if mem["oom"] else 0)
    refused = CounterMetricFamily("wire_redis_oom_errors", "Commands Redis refused for lack of memory "
                                  "since it started (INFO errorstats OOM).")
    refused.add_metric([], mem["oom_errors"])
    return [used, limit, oom, refused]


def default_replay(enqueue: Callable[[dict[str, Any], bool], None]) -> Callable[[str, dict[str, Any]], None]:
    """What `wire dlq replay` does with a dead letter, for callers that pass no `replay`.

    A fetch-stage letter goes through `enqueue` with force (as the CLI does);
    a process-stage letter is sent to the `process` queue through the current
    Celery app (`wire serve` creates and sets it as default before serving).
    """
    def enqueue_process(payload: dict[str, Any]) -> None:
        from celery import current_app

        current_app.send_task("wire.process", args=[payload], queue="process")

    return dlq.stage_replayer(enqueue, enqueue_process)


def make_handler(deps: Deps, enqueue: Callable[[dict[str, Any], bool], None],
                 rediscover: Callable[[str], None],
                 replay: Callable[[str, dict[str, Any]], None] | None = None) -> type[BaseHTTPRequestHandler]:
    require_strong_admin_token(deps.settings.admin_token)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Collector(deps))
    token = deps.settings.admin_token
    proxies = peers.parse_networks(deps.settings.trusted_proxies)
    ui = console.Console(deps, enqueue, rediscover, replay or default_replay(enqueue))

    class Handler(BaseHTTPRequestHandler):
        server_version = "wire"
        sys_version = ""
        timeout = 15  # a client that opens a connection and sends nothing is dropped

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
            pass  # access logs would drown the page summaries; errors are logged below

        def _send(self, code: int, body: bytes, ctype: str = "application/json") -> None:
            self.send_response(code)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(body)

        def _json(self, code: int, doc: Any, retry_after: int | None = None) -> None:
            body = json.dumps(doc, sort_keys=True).encode() + b"\n"
            if retry_after is None:
                self._send(code, body)
                return
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.send_header("Retry-After", str(retry_after))
            self.end_headers()
            self.wfile.write(body)

        def _client(self) -> str:
            """Who the limiters count: the peer, or whom a trusted proxy forwarded for (worker.peers)."""
            forwarded = ", ".join(self.headers.get_all("X-Forwarded-For") or []) or None
            return peers.client_of(str(self.client_address[0]), forwarded, proxies)

        def _limited(self, kind: str, who: str, limit: int, now: float) -> ratelimit.Verdict:
            key = deps.keys.rate_limit(kind, who, ratelimit.window_of(now, 60))
            return ratelimit.hit(deps.redis, key, limit, 60, now)

        def _console(self, method: str, body: bytes = b"") -> None:
            path, _, query = self.path.partition("?")
            resp = ui.handle(method, path, query, self.headers.get("Cookie"), body, client=self._client())
            self.send_response(resp.status)
            self.send_header("Content-Type", resp.content_type)
            self.send_header("Content-Length", str(len(resp.body)))
            self.send_header("Cache-Control", "no-store")
            for name, value in resp.headers:
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(resp.body)

        def _body(self) -> bytes | None:
            """The request body, or None after answering 400/413 for a bad Content-Length."""
            try:
                length = int(self.headers.get("Content-Length") or 0)
            except ValueError:
                length = -1
            if length < 0 or length > MAX_BODY:
                self._json(413 if length > MAX_BODY else 400, {"error": "bad or too large Content-Length"})
                return None
            return self.rfile.read(length)

        def do_GET(self) -> None:  # noqa: N802 - stdlib name
            path = self.path.split("?", 1)[0]
            if console.handles("GET", path):
                self._console("GET")
                return
            try:
                if path == "/metrics":
                    self._send(200, generate_latest(registry), "text/plain; version=0.0.4; charset=utf-8")
                elif path == "/healthz":
                    ok, why = status.health(deps.redis, deps.keys, deps.settings)
                    self._json(200 if ok else 503, {"healthy": ok, "reason": why})
                elif path == "/status":
                    self._json(200, status.collect(deps.redis, deps.keys, deps.sources, deps.settings))
                else:
                    self._json(404, {"error": "not found"})
            except redis.RedisError as exc:
                self._json(503, {"error": f"redis unavailable: {type(exc).__name__}"})

        def do_POST(self) -> None:  # noqa: N802
            if console.handles("POST", self.path.split("?", 1)[0]):
                body = self._body()
                if body is not None:
                    self._console("POST", body)
                return
            if self.path.split("?", 1)[0] != "/reingest":
                self._json(404, {"error": "not found"})
                return
            if not token:
                self._json(403, {"error": "re-ingest is disabled: WIRE_ADMIN_TOKEN is not set"})
                return
            who, now = self._client(), time.time()
            try:
                # counted before the comparison, forgiven when right: a burst of guesses cannot slip through
                guesses = self._limited("bearer", who, BEARER_FAILURES_PER_MINUTE, now)
                if not guesses.allowed:
                    log.warning("reingest_limited", client=who, reason="bad tokens")
                    self._json(429, {"error": "too many wrong tokens from this client; retry later"},
                               guesses.retry_after)
                    return
                given = self.headers.get("Authorization", "")
                expected = f"Bearer {token}"
                if not hmac.compare_digest(given.encode(), expected.encode()):
                    log.warning("reingest_refused", client=who, reason="wrong token")
                    self._json(401, {"error": "missing or wrong bearer token"})
                    return
                ratelimit.forgive(deps.redis, deps.keys.rate_limit("bearer", who, ratelimit.window_of(now, 60)))
                accepted = self._limited("reingest", "all", REINGEST_PER_MINUTE, now)
            except redis.RedisError as exc:
                self._json(503, {"error": f"redis unavailable: {type(exc).__name__}"})
                return
            if not accepted.allowed:
                log.warning("reingest_limited", client=who, reason="rate cap")
                self._json(429, {"error": f"re-ingest is capped at {REINGEST_PER_MINUTE} requests a minute; "
                                          "retry later"}, accepted.retry_after)
                return
            raw = self._body()
            if raw is None:
                return
            try:
                body = json.loads(raw or b"null")
                req = reingest.Request.from_json(body)
                result = reingest.run(req, deps, enqueue, rediscover)
            except json.JSONDecodeError as exc:
                self._json(400, {"error": f"malformed JSON: {exc.msg} at position {exc.pos}"})
                return
            except UnicodeDecodeError:
                self._json(400, {"error": "malformed JSON: not UTF-8 text"})
                return
            except RecursionError:  # e.g. 200,000 "[": under the size cap, deeper than the parser goes
                self._json(400, {"error": "malformed JSON: nested too deeply"})
                return
            except WorkerError as exc:
                self._json(400, {"error": str(exc)})
                return
            except redis.RedisError as exc:
                self._json(503, {"error": f"redis unavailable: {type(exc).__name__}"})
                return
            log.info("reingest", count=result["count"], force=result["force"])
            self._json(202, result)

        def _not_allowed(self) -> None:
            # every error of the API is JSON, a wrong method too (the stdlib would answer 501 in HTML)
            self.send_response(405)
            body = json.dumps({"error": f"method {self.command} not allowed"}).encode() + b"\n"
            self.send_header("Allow", "GET, POST")
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_PUT = do_DELETE = do_PATCH = do_OPTIONS = _not_allowed  # noqa: N815 - stdlib names

    return Handler


class _Server(BoundedHTTPServer):
    """Also takes the console's per-minute activity snapshot while serving (see worker.console.activity)."""

    max_body = MAX_BODY
    deps: Deps
    next_snapshot = 0.0

    def service_actions(self) -> None:
        now = time.time()
        if now < self.next_snapshot:
            return
        self.next_snapshot = now + 5.0
        try:
            activity.snapshot(self.deps.redis, self.deps.keys.prefix, self.deps.keys.metrics(), now)
        except redis.RedisError as exc:
            log.warning("activity_snapshot_failed", error=type(exc).__name__)


def serve(deps: Deps, host: str, port: int, enqueue: Callable[[dict[str, Any], bool], None],
          rediscover: Callable[[str], None],
          replay: Callable[[str, dict[str, Any]], None] | None = None) -> BoundedHTTPServer:
    """The HTTP server; `replay(stage, payload)` re-enqueues a dead letter (default: `default_replay`)."""
    server = _Server((host, port), make_handler(deps, enqueue, rediscover, replay))
    server.deps = deps
    return server
