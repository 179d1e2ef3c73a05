"""Hostile-input catalogue: ONE table of hostile inputs across every stage, each run through the real code
path and checked for the same four things.

Stages and how a case reaches the code:

- ``feed`` / ``sitemap``: served by a loopback fault host and read by a real `wire worker` running the
  ``wire.discover`` task for a source of its own; the outcome is what the worker recorded in Redis (the
  source's ``last_error`` / ``discovered``).
- ``page``: served by the same host and sent to the same worker as a ``wire.fetch`` task (fetch, then the
  process task: extract, dedup, publish); the outcome is the worker's own record for that source
  (``wire_skipped_total{reason}``, ``wire_items_published_total``, or an entry in ``wire:dead``).
- ``config`` / ``env``: `wire sources check FILE` in a subprocess; it must exit 2 naming the file (or the
  variable) and the field, without a traceback.
- ``api``: raw HTTP requests to a running `wire serve`.
- ``url``: ``POST /reingest`` on that `wire serve`, which runs with private addresses NOT allowed (one
  case puts a ``file://`` URL straight into the worker's fetch queue instead).

For every case the test asserts (1) the expected clear error or recorded reason, (2) that nothing crashed:
the worker still publishes a fresh canary page afterwards, `wire serve` still answers ``/healthz`` 200, the
CLI exits with its documented status and no traceback, (3) bounded memory: the peak RSS growth of the
process that handled the input (the worker or serve: the kernel's high-water mark is reset through
``/proc/PID/clear_refs`` before each case and compared with the RSS at that moment; the CLI: its own
``ru_maxrss``) stays under the case's ``max_mb`` (default 32 MB; 150 MB for the whole CLI process), and the
process's peak stays under PROCESS_MAX_MB, and (4) bounded time: the outcome arrives within ``max_s``
seconds (default 10). RSS growth is measured from what the process already holds, so memory an earlier case
left in the allocator's free lists can absorb part of a later case's peak: it bounds the footprint, which is
what an operator sees, rather than the bytes allocated.

The worker runs with the default body cap (``WIRE_MAX_BODY_BYTES`` = 5 MB) and private addresses allowed
(the fault host is on 127.0.0.x); it is a thread-pool worker with one thread, so each case has it to itself.
"""

from __future__ import annotations

import base64
import contextlib
import itertools
import json
import os
import re
import socket
import subprocess
import sys
import time
import uuid
import zlib
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import redis
from celery import Celery

from tests.support.cluster import Cluster
from tests.support.env import wire_env
from tests.support.faultnet import CHALLENGE, article_page, article_text
from tests.support.helpers import http_get, wait_for
from tests.support.loopback import HTML, RSS, TEXT, Resp, Route, Site, SiteServer
from tests.support.paths import ROOT
from worker.keys import Keys, as_text
from worker.metrics import counter_totals
from worker.ops.redis_server import RedisProcess, free_port
from worker.queue.app import celery_config
from worker.settings import Settings

pytestmark = pytest.mark.slow

MB = 1024 * 1024
CAP = 5 * MB  # the worker's body cap (WIRE_MAX_BODY_BYTES default)
TOKEN = "s3cret-token-0123456789abcdef0123"
PUBLIC_IP = "93.184.216.34"  # a public address literal: no DNS needed, never contacted (serve only enqueues)
XML = {"Content-Type": "application/xml"}
GZIP = {"Content-Type": "application/x-gzip"}
# Whatever the case, no process handling it may peak above this (Celery recycles a prefork child past 400 MB).
PROCESS_MAX_MB = 400
CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")

# bytes each streamed route has yielded so far (the 100 MB / 30 MB bodies): proves "refused early"
SENT: dict[str, int] = defaultdict(int)

# ----------------------------------------------------------------------------- inputs


def _one(route: Route) -> Callable[[str, str], dict[str, Route]]:
    """A case served at its own path."""
    return lambda base, path: {path: route}


def _ok(body: str | bytes | Callable[[], bytes], headers: dict[str, str] | None = None,
        ) -> Callable[[str, str], dict[str, Route]]:
    """A 200 answer with `body` (a callable is only called when the routes are built, not at import)."""
    def build(base: str, path: str) -> dict[str, Route]:
        data = body() if callable(body) else body
        return {path: lambda count, req: Resp(200, dict(headers or HTML), data)}
    return build


def _stream(name: str, total: int, first: bytes, chunk: bytes, headers: dict[str, str],
            announce: bool = False) -> Callable[[str, str], dict[str, Route]]:
    """`total` bytes streamed in chunks (close-delimited unless `announce`), counted in SENT[name]."""
    def body() -> Iterator[bytes]:
        SENT[name] += len(first)
        yield first
        while SENT[name] < total:
            SENT[name] += len(chunk)
            yield chunk

    return _one(lambda count, req: Resp(200, dict(headers), body(), length=total if announce else None))


_BOMB: dict[int, bytes] = {}


def gzip_bomb(inflated: int = 256 * MB) -> bytes:
    """About 250 KB of gzip inflating to `inflated` zero bytes, built without holding them in memory."""
    if inflated not in _BOMB:
        comp = zlib.compressobj(9, zlib.DEFLATED, 31)
        zeros = bytes(MB)
        _BOMB[inflated] = b"".join([comp.compress(zeros) for _ in range(inflated // MB)] + [comp.flush()])
    return _BOMB[inflated]


def _redirect_loop(base: str, path: str) -> dict[str, Route]:
    return {path: lambda c, r: Resp(302, {"Location": f"{path}/b"}),
            f"{path}/b": lambda c, r: Resp(302, {"Location": path})}


def _redirect_chain(base: str, path: str) -> dict[str, Route]:
    def hop(to: str) -> Route:
        return lambda count, req: Resp(302, {"Location": to})

    hops = {f"{path}/{i}" if i else path: hop(f"{path}/{i + 1}") for i in range(7)}
    hops[f"{path}/7"] = lambda count, req: Resp(200, HTML, article_page(7, "chain"))
    return hops


def _feed_items(base: str, name: str, extra: str = "") -> str:
    return f"<item><title>Only story</title><link>{base}/gone/{name}</link></item>{extra}"


def _billion_laughs(base: str, path: str) -> dict[str, Route]:
    ents = '<!ENTITY lol "lol">' + "".join(
        f'<!ENTITY lol{i} "{("&lol%s;" % (i - 1 if i > 1 else "")) * 10}">' for i in range(1, 10))
    doc = (f'<?xml version="1.0"?><!DOCTYPE rss [{ents}]><rss version="2.0"><channel><title>&lol9;</title>'
           f'{_feed_items(base, "feed-billion-laughs")}</channel></rss>')
    return {path: lambda c, r: Resp(200, RSS, doc)}


def _external_entity(base: str, path: str) -> dict[str, Route]:
    doc = (f'<?xml version="1.0"?><!DOCTYPE rss [<!ENTITY xxe SYSTEM "{base}/xxe-canary">'
           f'<!ENTITY pw SYSTEM "file:///etc/passwd">]><rss version="2.0"><channel><title>&xxe;&pw;</title>'
           f'{_feed_items(base, "feed-external-entity")}</channel></rss>')
    return {path: lambda c, r: Resp(200, RSS, doc),
            "/xxe-canary": lambda c, r: Resp(200, TEXT, "LEAKED-BY-XXE")}


def _external_dtd(base: str, path: str) -> dict[str, Route]:
    doc = (f'<?xml version="1.0"?><!DOCTYPE rss SYSTEM "{base}/evil.dtd"><rss version="2.0"><channel>'
           f'{_feed_items(base, "feed-external-dtd")}</channel></rss>')
    return {path: lambda c, r: Resp(200, RSS, doc),
            "/evil.dtd": lambda c, r: Resp(200, TEXT, '<!ENTITY % leak SYSTEM "file:///etc/passwd">')}


def _hostile_links(base: str, path: str) -> dict[str, Route]:
    links = ["file:///etc/passwd", "gopher://a.example:70/1", "ftp://a.example/x", "javascript:alert(1)",
             "data:text/html,<script>alert(1)</script>", "http://exa mple..com/", "http://" + "a" * 10_000 + ".com/"]
    items = "".join(f"<item><link>{link.replace('&', '&amp;').replace('<', '&lt;')}</link></item>" for link in links)
    doc = (f'<rss version="2.0"><channel>{items}{_feed_items(base, "feed-hostile-links")}</channel></rss>')
    return {path: lambda c, r: Resp(200, RSS, doc)}


def _truncated_feed(base: str, path: str) -> dict[str, Route]:
    doc = (f'<?xml version="1.0"?><rss version="2.0"><channel><title>Cut &amp; broken</title>'
           f"<item><link>{base}/gone/feed-truncated-xml</link></item><item><title>Half an it")
    return {path: lambda c, r: Resp(200, RSS, doc)}


def _control_page() -> bytes:
    page = article_page(21, "ctl").replace("<p>", "<p>\x07\x1b\x0b\x7f\u0085 ", 3)
    page = page.replace("<title>", "<title>\x08\x01", 1).replace("<h1>", "<h1>\x00\x00", 1)
    return page.encode("utf-8")


def _unknown_charset_page() -> bytes:
    return article_page(22, "kl").replace('<meta charset="utf-8">', '<meta charset="x-klingon">').encode()


# ----------------------------------------------------------------------------- the table


@dataclass(frozen=True)
class Case:
    """One hostile input. `expect` is what must come out:

    - ``skipped:REASON`` / ``dead:REASON`` / ``published`` (page): the worker's record for the case's source;
    - ``error:TEXT`` (feed, sitemap): the source's recorded ``last_error`` contains TEXT;
      ``discovered:N``: no error and N new URLs;
    - ``exit2:TEXT`` (config, env): exit status 2, TEXT (with ``{file}`` for the sources file) on stderr;
    - ``STATUS:TEXT`` (api, url): the HTTP status and TEXT in the body.
    """

    name: str
    stage: str  # feed | sitemap | page | config | env | api | url
    via: str  # discover | fetch | cli | http | reingest: how the input reaches the code
    input: Any
    expect: str
    max_mb: float | None = None  # peak RSS growth of worker/serve (default 32); the CLI's own peak (default 150)
    max_s: float = 10.0
    check: Callable[[World, Case, Any], None] | None = None
    bug: str | None = None  # a real bug in worker/: the case is xfail(strict=True) with this reason


def _no_request(path: str) -> Callable[[World, Case, Any], None]:
    def check(world: World, case: Case, _: Any) -> None:
        assert world.fault.requests(path=path) == [], f"{case.name}: {path} was requested"
    return check


def _sent_under(limit: int) -> Callable[[World, Case, Any], None]:
    def check(world: World, case: Case, _: Any) -> None:
        assert SENT[case.name] < limit, f"{case.name}: the server got to send {SENT[case.name]} bytes"
    return check


def _item_check(predicate: Callable[[dict[str, Any]], bool], what: str) -> Callable[[World, Case, Any], None]:
    def check(world: World, case: Case, _: Any) -> None:
        items = [json.loads(f[b"data"]) for _, f in world.r.xrange(world.keys.items_stream)]
        mine = [i for i in items if i["source"] == case.name]
        assert len(mine) == 1 and predicate(mine[0]), f"{case.name}: {what}: {str(mine)[:500]}"
    return check


def _not_created(path: str) -> None:
    assert not os.path.exists(path), f"{path} exists: YAML ran a command"


def _no_secret_anywhere(world: World, case: Case, body: Any) -> None:
    """The enqueued fetch task, the answer and serve's log carry the URL without its credentials."""
    messages = world.serve_r.lrange("fetch", 0, -1)
    world.serve_r.delete("fetch")
    assert len(messages) == 1, messages
    envelope = json.loads(messages[0])
    task = base64.b64decode(envelope["body"]) if envelope["properties"]["body_encoding"] == "base64" \
        else envelope["body"].encode()
    assert f"http://{PUBLIC_IP}/story?id=1".encode() in task and b"hunter2" not in task, task
    assert "hunter2" not in str(body)
    assert "hunter2" not in (world.tmp / "serve.log").read_text(errors="replace")


SOURCES_OK = "sources:\n- name: ok\n  feeds: ['https://news.example.com/feed']\n"


def _yaml(body: str) -> str:
    return "sources:\n- name: bad\n  feeds: ['https://news.example.com/feed']\n" + body


CASES: list[Case] = [
    # --- feeds and sitemaps: read by the worker's discover task
    Case("feed-truncated-xml", "feed", "discover", _truncated_feed, "discovered:1"),
    Case("feed-garbage-bytes", "feed", "discover", _ok(b"\x00\x01\x02<\x03\x04\xff", RSS), "error:unparseable XML"),
    Case("feed-billion-laughs", "feed", "discover", _billion_laughs, "error:XML DOCTYPE declares entities; refused"),
    Case("feed-external-entity", "feed", "discover", _external_entity,
         "error:XML DOCTYPE declares entities; refused", check=_no_request("/xxe-canary")),
    Case("feed-external-dtd", "feed", "discover", _external_dtd, "discovered:1", check=_no_request("/evil.dtd")),
    Case("feed-100mb-streamed", "feed", "discover",
         _stream("feed-100mb-streamed", 100 * MB, b'<rss version="2.0"><channel>',
                 b"<item><title>" + b"x" * 65_000 + b"</title></item>", RSS),
         f"error:body over the {CAP} byte cap", max_mb=48, check=_sent_under(40 * MB)),
    Case("feed-100mb-announced", "feed", "discover",
         _stream("feed-100mb-announced", 100 * MB, b'<rss version="2.0"><channel>', b"<item/>" * 9000, RSS,
                 announce=True),
         f"error:body of {100 * MB} bytes over the {CAP} cap", check=_sent_under(16 * MB)),
    Case("sitemap-gzip-bomb", "sitemap", "discover", _ok(gzip_bomb, GZIP),
         "error:gzip expands beyond 52428800 bytes", max_mb=160),
    Case("sitemap-gzip-bomb-content-encoding", "sitemap", "discover",
         _ok(gzip_bomb, {**XML, "Content-Encoding": "gzip"}), f"error:body over the {CAP} byte cap", max_mb=48),
    Case("feed-png-served-as-rss", "feed", "discover", _ok(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 64, RSS),
         "error:unparseable XML"),
    Case("feed-json-not-a-feed", "feed", "discover", _ok(b'{"error": "not found", "items": 3}',
                                                         {"Content-Type": "application/json"}),
         "error:not a JSON Feed"),
    Case("feed-html-page-without-feed", "feed", "discover", _ok(article_page(3, "nofeed")),
         "error:an HTML page that advertises no feed"),
    Case("sitemap-html-page", "sitemap", "discover", _ok(article_page(4, "nomap")),
         "error:not a sitemap: root element <html>"),
    Case("feed-redirect-loop", "feed", "discover", _redirect_loop, "error:redirect loop"),
    Case("feed-hostile-links", "feed", "discover", _hostile_links, "discovered:1"),
    # --- pages: the worker's fetch task, then its process task (extract, dedup, publish)
    Case("page-empty", "page", "fetch", _ok(b""), "skipped:empty"),
    Case("page-30mb", "page", "fetch",
         _stream("page-30mb", 30 * MB, b"<html><body>", b"<p>" + b"filler " * 9362 + b"</p>\n", HTML),
         "skipped:too_large", max_mb=48, check=_sent_under(20 * MB)),
    # lxml builds the whole tree before extract counts its elements: ~35x the page in RSS, capped by the
    # 5 MB body cap (the worst case, 5 MB of <br>, is the next line)
    Case("page-too-many-elements", "page", "fetch", _ok(b"<html><body>" + b"<p>x</p>" * 300_000 + b"</body></html>"),
         "skipped:too_large", max_mb=128),
    Case("page-5mb-of-void-elements", "page", "fetch",
         _ok(lambda: b"<html><body>" + b"<br>" * 1_300_000 + b"</body></html>"), "skipped:too_large", max_mb=256),
    Case("page-nested-100k", "page", "fetch",
         _ok(b"<html><body>" + b"<div>" * 100_000 + b"deep" + b"</div>" * 100_000 + b"</body></html>"),
         "skipped:empty", max_mb=64),
    Case("page-giant-text-node", "page", "fetch",
         _ok(b"<html><body><p>" + b"The council met on Monday. " * 180_000 + b"</p></body></html>"),
         "published", max_mb=200, max_s=20,
         check=_item_check(lambda i: 0 < len(i["body"]) <= 50_000, "body cut to 50,000 characters")),
    Case("page-unclosed-tags", "page", "fetch",
         _ok(b"<html><head><title>Unclosed</title><body><article><p>"
             + b"A sentence of the story that goes on. " * 20 + b"<p><b>Second paragraph without end tags " * 3),
         "published", check=_item_check(lambda i: "A sentence of the story" in i["body"], "text survives")),
    Case("page-control-characters", "page", "fetch", _ok(_control_page()), "published",
         check=_item_check(lambda i: not CONTROL.search(i["body"] + i["title"]) and i["title"] == article_text(21)[0],
                           "no control character in title or body")),
    Case("page-nul-bytes", "page", "fetch", _ok(b"<html><body><p>" + b"text\x00" * 400 + b"</p></body></html>"),
         "skipped:not_html"),
    Case("page-pdf", "page", "fetch", _ok(b"%PDF-1.7\n" + bytes(range(256)) * 64, {"Content-Type": "application/pdf"}),
         "skipped:not_html"),
    Case("page-pdf-served-as-html", "page", "fetch", _ok(b"%PDF-1.7\n" + bytes(range(256)) * 64), "skipped:not_html"),
    Case("page-binary-served-as-html", "page", "fetch", _ok(bytes(range(256)) * 4096), "skipped:not_html"),
    Case("page-redirect-loop", "page", "fetch", _redirect_loop, "skipped:redirect_loop"),
    Case("page-too-many-redirects", "page", "fetch", _redirect_chain, "skipped:too_many_redirects"),
    Case("page-gzip-bomb", "page", "fetch", _ok(gzip_bomb, {**HTML, "Content-Encoding": "gzip"}),
         "skipped:too_large", max_mb=48),
    Case("page-unknown-charset", "page", "fetch", _ok(_unknown_charset_page(), {"Content-Type": "text/html; charset=x-klingon"}),
         "published", check=_item_check(lambda i: i["title"] == article_text(22)[0], "decoded with a fallback")),
    Case("page-bot-challenge-200", "page", "fetch", _ok(CHALLENGE), "skipped:bot_wall"),
    # --- configuration: `wire sources check FILE`
    Case("config-bad-interval", "config", "cli", (_yaml("  interval: 5 fortnights\n"), {}),
         "exit2:{file}: source 'bad'.interval: not a duration: '5 fortnights'"),
    Case("config-bad-rate", "config", "cli", (_yaml("  rate: -2\n"), {}),
         "exit2:{file}: source 'bad'.rate: expected a positive number of requests per second, got -2"),
    Case("config-unknown-field", "config", "cli", (_yaml("  feedz: [x]\n"), {}),
         "exit2:{file}: source 'bad'.feedz: unknown field"),
    Case("config-bad-url-scheme", "config", "cli",
         ("sources:\n- name: bad\n  feeds: ['ftp://news.example.com/feed']\n", {}),
         "exit2:{file}: source 'bad'.feeds[0]: expected an http(s) URL, got 'ftp://news.example.com/feed'"),
    Case("config-duplicate-name", "config", "cli", (_yaml("- name: bad\n  feeds: ['https://b.example/f']\n"), {}),
         "exit2:{file}: source 'bad'.name: duplicate source name"),
    Case("config-yaml-python-tag", "config", "cli",
         ("sources: !!python/object/apply:os.system ['touch /tmp/wire-pwned']\n", {}),
         "exit2:{file}: line 1: not valid YAML", check=lambda w, c, o: _not_created("/tmp/wire-pwned")),
    Case("env-fetch-timeout-not-a-number", "env", "cli", (None, {"WIRE_FETCH_TIMEOUT": "soon"}),
         "exit2:environment: WIRE_FETCH_TIMEOUT: expected a number, got 'soon'"),
    Case("env-private-addresses-not-a-flag", "env", "cli", (None, {"WIRE_ALLOW_PRIVATE_ADDRESSES": "maybe"}),
         "exit2:environment: WIRE_ALLOW_PRIVATE_ADDRESSES: expected true/false, got 'maybe'"),
    Case("env-log-format", "env", "cli", (None, {"WIRE_LOG_FORMAT": "xml"}),
         "exit2:environment: WIRE_LOG_FORMAT: expected json or console, got 'xml'"),
    Case("env-max-attempts-zero", "env", "cli", (None, {"WIRE_MAX_ATTEMPTS": "0"}),
         "exit2:environment: WIRE_MAX_ATTEMPTS: must be >= 1, got '0'"),
    Case("env-visibility-below-time-limit", "env", "cli", (None, {"WIRE_VISIBILITY_TIMEOUT": "20"}),
         "exit2:environment: WIRE_VISIBILITY_TIMEOUT: must exceed WIRE_TASK_TIME_LIMIT (120s)"),
    Case("env-key-prefix", "env", "cli", (None, {"WIRE_KEY_PREFIX": "wire prod"}),
         "exit2:environment: WIRE_KEY_PREFIX: invalid characters in 'wire prod'"),
    # --- the admin API of a running `wire serve`
    Case("api-bad-json", "api", "http", ("POST", "/reingest", True, b'{"urls": [tru'), "400:malformed JSON"),
    Case("api-not-utf8", "api", "http", ("POST", "/reingest", True, b"\xff\xfe{\x00"), "400:malformed JSON"),
    Case("api-json-array", "api", "http", ("POST", "/reingest", True, b"[1, 2]"), "400:expected a JSON object"),
    Case("api-unknown-field", "api", "http", ("POST", "/reingest", True, b'{"urls": [], "rm": "-rf"}'),
         "400:unknown field(s): rm"),
    Case("api-deeply-nested-json", "api", "http", ("POST", "/reingest", True, b"[" * 200_000),
         "400:malformed JSON: nested too deeply"),
    Case("api-huge-body", "api", "http", ("POST", "/reingest", True, b"{" * 65_536, 1024 * MB),
         "413:too large Content-Length"),
    Case("api-wrong-token", "api", "http", ("POST", "/reingest", "wrong", b'{"all": true}'),
         "401:missing or wrong bearer token"),
    Case("api-no-token", "api", "http", ("POST", "/reingest", None, b'{"all": true}'),
         "401:missing or wrong bearer token"),
    Case("api-wrong-method-put", "api", "http", ("PUT", "/reingest", True, b"{}"), "405:method PUT not allowed"),
    Case("api-wrong-method-delete", "api", "http", ("DELETE", "/reingest", True, b""),
         "405:method DELETE not allowed"),
    Case("api-post-to-status", "api", "http", ("POST", "/status", True, b"{}"), "404:not found"),
    # --- URLs: POST /reingest with private addresses not allowed
    Case("url-file-scheme", "url", "reingest", "file:///etc/passwd", "400:scheme not allowed: file"),
    Case("url-gopher-scheme", "url", "reingest", "gopher://news.example.com:70/1", "400:scheme not allowed: gopher"),
    Case("url-ftp-scheme", "url", "reingest", "ftp://news.example.com/a.html", "400:scheme not allowed: ftp"),
    Case("url-private-10", "url", "reingest", "http://10.1.2.3/story", "400:refusing 10.1.2.3: resolves to a private address"),
    Case("url-loopback", "url", "reingest", "http://127.0.0.1:6379/", "400:refusing 127.0.0.1: resolves to a private address"),
    Case("url-loopback-decimal", "url", "reingest", "http://2130706433/", "400:refusing 2130706433: resolves to a private address"),
    Case("url-localhost-name", "url", "reingest", "http://localhost/x", "400:refusing localhost: resolves to a private address"),
    Case("url-ipv6-loopback", "url", "reingest", "http://[::1]/x", "400:refusing ::1: resolves to a private address"),
    Case("url-link-local-metadata", "url", "reingest", "http://169.254.169.254/latest/meta-data/",
         "400:refusing 169.254.169.254: resolves to a private address"),
    Case("url-10kb", "url", "reingest", f"http://{PUBLIC_IP}/" + "a" * 10_240, "400:URL longer than 2048 characters"),
    Case("url-credentials", "url", "reingest", f"http://admin:hunter2@{PUBLIC_IP}/story?id=1",
         f'202:"http://{PUBLIC_IP}/story?id=1"', check=_no_secret_anywhere),
    Case("url-idn-host", "url", "reingest", "http://bücher.example/a", "400:cannot resolve xn--bcher-kva.example"),
    Case("url-garbage-host", "url", "reingest", "http://exa mple..com/", "400:bad host: exa mple..com"),
    Case("url-invisible-host", "url", "reingest", "http://\u00ad\u200b/", "400:bad international host"),
    Case("url-file-scheme-in-a-task", "url", "fetch", "file:///etc/passwd", "skipped:bad_url", max_s=3),
]

# ----------------------------------------------------------------------------- the running world


@dataclass
class World:
    fault: SiteServer
    host: Site
    r: redis.Redis  # the worker's Redis db
    keys: Keys
    app: Celery
    worker: subprocess.Popen[bytes]
    serve: subprocess.Popen[bytes]
    serve_base: str
    serve_r: redis.Redis  # the serve's own db: what it enqueues is inspected, never consumed
    tmp: Path
    canaries: Iterator[int] = field(default_factory=lambda: itertools.count(1))

    def url(self, case: Case) -> str:
        return case.input if case.via == "fetch" and isinstance(case.input, str) else f"{self.host.base}/c/{case.name}"


def _source_yaml(case: Case, base: str) -> str:
    kind = "sitemaps" if case.stage == "sitemap" else "feeds"
    return f"- name: {case.name}\n  {kind}: ['{base}/c/{case.name}']\n  rate: 100\n"


@pytest.fixture(scope="module")
def world(redis_server: RedisProcess, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    tmp = tmp_path_factory.mktemp("hostile")
    fault = SiteServer()
    host = fault.add("hostile", "127.0.0.51")
    host.routes["/robots.txt"] = lambda c, r: Resp(404, TEXT, "")
    for case in CASES:
        if case.via in ("discover", "fetch") and callable(case.input):
            host.routes.update(case.input(host.base, f"/c/{case.name}"))
    worker_cases = [c for c in CASES if c.via in ("discover", "fetch")]
    sources = tmp / "sources.yaml"
    sources.write_text("sources:\n" + "".join(_source_yaml(c, host.base) for c in worker_cases)
                       + f"- name: canary\n  feeds: ['{host.base}/c/canary']\n  rate: 100\n")
    serve_sources = tmp / "serve-sources.yaml"
    serve_sources.write_text(f"sources:\n- name: public\n  feeds: ['http://{PUBLIC_IP}/feed']\n")
    prefix = f"h{uuid.uuid4().hex[:8]}"
    worker_url = f"redis://127.0.0.1:{redis_server.port}/9"
    serve_url = f"redis://127.0.0.1:{redis_server.port}/10"
    r = redis.Redis.from_url(worker_url)
    serve_r = redis.Redis.from_url(serve_url)
    r.flushdb()
    serve_r.flushdb()
    common = {"key_prefix": prefix, "log_format": "json", "data_dir": tmp / "data"}
    worker_env = wire_env(**common, redis_url=worker_url, sources=sources, allow_private_addresses=1)
    cluster = Cluster(worker_env, tmp)
    serve_port = free_port()
    settings = Settings.from_env(worker_env)
    app = Celery("hostile-catalogue", set_as_current=False)
    app.conf.update(celery_config(settings))
    try:
        worker = cluster.start("worker", "worker", "--queues", "discover,fetch,process", "--pool", "threads",
                               "--concurrency", "1")
        serve_env = wire_env(**common, redis_url=serve_url, sources=serve_sources, admin_token=TOKEN)
        serve_cluster = Cluster(serve_env, tmp)
        serve = serve_cluster.start("serve", "serve", "--host", "127.0.0.1", "--port", str(serve_port))
        cluster.procs.append(serve)
        serve_base = f"http://127.0.0.1:{serve_port}"
        cluster.wait(lambda: http_get(serve_base + "/healthz")[0] == 200, timeout=30, what="wire serve")
        w = World(fault, host, r, Keys.for_prefix(prefix), app, worker, serve, serve_base, serve_r, tmp)
        _canary(w, timeout=60)  # the worker is up and publishing
        yield w
    finally:
        cluster.stop()
        app.close()
        fault.stop()
        r.close()
        serve_r.close()


# ----------------------------------------------------------------------------- measuring


def _status_kb(pid: int, name: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(name + ":"):
            return int(line.split()[1])
    raise AssertionError(f"no {name} for pid {pid}")


class Peak:
    """Peak RSS growth of a running process over one case: the kernel's high-water mark is reset first."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        # reset VmHWM to the current RSS (Linux >= 4.0); if refused, VmHWM is the peak since start: looser
        with contextlib.suppress(OSError):
            Path(f"/proc/{pid}/clear_refs").write_text("5")
        self.start_kb = _status_kb(pid, "VmRSS")

    def growth_mb(self) -> float:
        return (_status_kb(self.pid, "VmHWM") - self.start_kb) / 1024

    def peak_mb(self) -> float:
        return _status_kb(self.pid, "VmHWM") / 1024


def _canary(world: World, timeout: float = 20) -> None:
    """The worker still fetches, extracts and publishes: a fresh story reaches wire:items."""
    k = next(world.canaries)
    path = f"/canary/{k}"
    world.host.routes[path] = lambda c, r: Resp(200, HTML, article_page(1000 + k, "canary"))
    world.app.send_task("wire.fetch", args=[{"url": world.host.base + path, "source": "canary"}], queue="fetch")

    def published() -> bool:
        totals = counter_totals(world.r, world.keys.metrics(), "wire_items_published_total")
        return sum(v for labels, v in totals.items() if dict(labels).get("source") == "canary") >= k

    wait_for(published, timeout=timeout, what=f"canary {k} to be published (the worker still answers)")


def _worker_outcome(world: World, case: Case) -> str | None:
    """What the worker recorded for the case's source, or None while it has not finished."""
    r, keys, name = world.r, world.keys, case.name
    if case.via == "discover":
        state = {as_text(k): as_text(v) for k, v in r.hgetall(keys.source_state(name)).items()}
        if "last_discovery" not in state:
            return None
        if int(state.get("errors", 0)):
            return "error:" + state.get("last_error", "")
        return f"discovered:{state.get('discovered', 0)}"
    for _, fields in r.xrange(keys.dead_stream):
        if as_text(fields[b"source"]) == name:
            return f"dead:{as_text(fields[b'reason'])}: {as_text(fields[b'error'])[:300]}"
    metrics = keys.metrics()
    for labels, value in counter_totals(r, metrics, "wire_skipped_total").items():
        if dict(labels).get("source") == name and value:
            return f"skipped:{dict(labels)['reason']}"
    for labels, value in counter_totals(r, metrics, "wire_items_published_total").items():
        if dict(labels).get("source") == name and value:
            return "published"
    return None


def _matches(expect: str, outcome: str) -> bool:
    kind, _, text = expect.partition(":")
    if kind in ("skipped", "published", "discovered"):
        return outcome == expect
    return outcome.startswith(kind + ":") and text in outcome


def _run_worker_case(world: World, case: Case) -> tuple[str, float, float, float]:
    assert world.worker.poll() is None, "the worker is not running"
    peak = Peak(world.worker.pid)
    started = time.monotonic()
    if case.via == "discover":
        world.app.send_task("wire.discover", args=[case.name], queue="discover")
    else:
        world.app.send_task("wire.fetch", args=[{"url": world.url(case), "source": case.name}], queue="fetch")
    try:
        outcome = str(wait_for(lambda: _worker_outcome(world, case), timeout=case.max_s, interval=0.05,
                               what=f"the worker's outcome for {case.name}"))
    except AssertionError:
        log = (world.tmp / "worker.log").read_text(errors="replace")
        raise AssertionError(f"no outcome for {case.name} within {case.max_s}s\n{log[-3000:]}") from None
    seconds = time.monotonic() - started
    growth, total = peak.growth_mb(), peak.peak_mb()
    _canary(world)
    assert world.worker.poll() is None, "the worker died"
    return outcome, seconds, growth, total


def _raw_http(base: str, method: str, path: str, headers: dict[str, str], body: bytes,
              announce: int | None = None) -> tuple[int, str]:
    """One request on a fresh socket; (0, why) when the server closes without an HTTP answer."""
    host, port = base.removeprefix("http://").split(":")
    head = f"{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n"
    head += "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    head += f"Content-Length: {announce if announce is not None else len(body)}\r\n\r\n"
    data = b""
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        # a server answering (413) before reading what was announced may hang up: read its answer below
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            sock.sendall(head.encode("latin-1") + body)
        try:
            while chunk := sock.recv(65536):
                data += chunk
        except (ConnectionResetError, TimeoutError):
            pass
    if not data.startswith(b"HTTP/"):
        return 0, f"no HTTP answer ({len(data)} bytes)"
    status = int(data.split(b" ", 2)[1])
    return status, data.partition(b"\r\n\r\n")[2].decode("utf-8", "replace")


def _run_serve_case(world: World, case: Case) -> tuple[str, float, float, float, Any]:
    assert world.serve.poll() is None, "wire serve is not running"
    if case.via == "reingest":
        method, path, auth, body, announce = "POST", "/reingest", True, json.dumps({"urls": [case.input]}).encode(), None
    else:
        method, path, auth, body, *rest = case.input
        announce = rest[0] if rest else None
    headers = {"Content-Type": "application/json"}
    if auth is True:
        headers["Authorization"] = f"Bearer {TOKEN}"
    elif isinstance(auth, str):
        headers["Authorization"] = f"Bearer {auth}"
    peak = Peak(world.serve.pid)
    started = time.monotonic()
    status, text = _raw_http(world.serve_base, method, path, headers, body, announce)
    seconds = time.monotonic() - started
    growth, total = peak.growth_mb(), peak.peak_mb()
    assert http_get(world.serve_base + "/healthz")[0] == 200, "wire serve no longer answers /healthz"
    assert world.serve.poll() is None, "wire serve died"
    return f"{status}:{text}", seconds, growth, total, text


_MEASURE = (
    "import os, subprocess, sys\n"
    "p = subprocess.Popen(sys.argv[1:])\n"
    "_, status, usage = os.wait4(p.pid, 0)\n"
    "sys.stderr.write(f'\\nMAXRSS {usage.ru_maxrss}')\n"
    "sys.exit(os.waitstatus_to_exitcode(status))\n"
)


def _run_cli_case(world: World, case: Case) -> tuple[str, float, float, float]:
    text, env_extra = case.input
    path = world.tmp / f"{case.name}.yaml"
    path.write_text(text if text is not None else SOURCES_OK)
    env = wire_env(sources=path, **env_extra)
    out, err = world.tmp / f"{case.name}.out", world.tmp / f"{case.name}.err"
    started = time.monotonic()
    with out.open("wb") as fo, err.open("wb") as fe:
        # through a small launcher: a child forked straight from pytest would report pytest's own
        # resident size (Linux keeps the pre-exec high-water mark in ru_maxrss)
        proc = subprocess.Popen([sys.executable, "-c", _MEASURE, sys.executable, "-m", "worker.ops.cli", "sources",
                                 "check", str(path)], env=env, cwd=ROOT, stdout=fo, stderr=fe)
        proc.wait()
    seconds = time.monotonic() - started
    stderr, _, maxrss = err.read_text(errors="replace").rpartition("\nMAXRSS ")
    assert "Traceback" not in stderr, stderr
    peak = int(maxrss) / 1024  # the whole short-lived process: its growth is its peak
    return f"exit{proc.returncode}:{stderr.replace(str(path), '{file}')}", seconds, peak, peak


# ----------------------------------------------------------------------------- the test


def _param(case: Case) -> Any:
    marks = [pytest.mark.xfail(strict=True, reason=case.bug)] if case.bug else []
    return pytest.param(case, id=case.name, marks=marks)


@pytest.mark.parametrize("case", [_param(c) for c in CASES])
def test_hostile_input(world: World, case: Case) -> None:
    """The case ends in its expected clear error or recorded reason, nothing crashes, and the process that
    handled it stays within the case's memory and time bounds."""
    detail: Any = None
    if case.via in ("discover", "fetch"):
        outcome, seconds, growth, total = _run_worker_case(world, case)
    elif case.via == "cli":
        outcome, seconds, growth, total = _run_cli_case(world, case)
    else:
        outcome, seconds, growth, total, detail = _run_serve_case(world, case)
    summary = (f"{case.stage} {case.name}: {outcome[:300]!r} in {seconds:.2f}s, peak RSS "
               + (f"{total:.0f} MB" if case.via == "cli" else f"+{growth:.1f} MB (process peak {total:.0f} MB)"))
    print(summary)
    assert _matches(case.expect, outcome), f"expected {case.expect!r}; {summary}"
    assert seconds < case.max_s, f"over {case.max_s}s: {summary}"
    limit = case.max_mb or (150.0 if case.via == "cli" else 32.0)
    assert growth < limit, f"over {limit} MB: {summary}"
    assert total < PROCESS_MAX_MB, f"process peak over {PROCESS_MAX_MB} MB: {summary}"
    if case.check:
        case.check(world, case, detail)


def test_catalogue_covers_every_stage() -> None:
    """The table has at least 25 cases, names are unique (they are source names), every stage is there."""
    names = [c.name for c in CASES]
    assert len(names) == len(set(names)) and len(CASES) >= 25
    assert {c.stage for c in CASES} == {"feed", "sitemap", "page", "config", "env", "api", "url"}
    assert all(re.fullmatch(r"[a-z0-9][a-z0-9_.-]{0,63}", n) for n in names)
