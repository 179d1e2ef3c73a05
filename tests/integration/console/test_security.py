"""The operator surface of `wire serve` against a hostile client, over real sockets and a real Redis:
per-client limiters (console login, bearer API) counted before they compare, a rate cap on accepted
re-ingests, a refused short admin token, and console sessions bound to the token they were made with."""

from __future__ import annotations

import http.client
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
import redis

from tests.support.env import wire_env
from tests.support.helpers import test_settings
from tests.support.loopback import SiteServer
from tests.support.paths import ROOT
from worker.ops.peers import client_of, parse_networks
from worker.ops.serve import serve
from worker.pipeline.deps import Deps
from worker.settings import parse_sources

SOURCES = "sources:\n- name: example\n  feeds: [https://news.example.com/feed]\n  interval: 1m\n"
TOKEN = "first-admin-token-0123456789abcdef"
OTHER_TOKEN = "second-admin-token-0123456789abcdef"


@dataclass
class Answer:
    status: int
    headers: dict[str, list[str]]
    text: str

    def cookie(self, name: str) -> str | None:
        for line in self.headers.get("set-cookie", []):
            if line.startswith(name + "="):
                return line.split(";", 1)[0].split("=", 1)[1]
        return None


class Wire:
    """`wire serve`'s HTTP server on a free port, with requests sent from any loopback address."""

    def __init__(self, deps: Deps) -> None:
        self.enqueued: list[Any] = []
        self.httpd = serve(deps, "127.0.0.1", 0, lambda c, f: self.enqueued.append((c, f)), lambda s: None)
        self.port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def request(self, method: str, path: str, *, source: str = "127.0.0.1", body: bytes | None = None,
                headers: dict[str, str] | None = None, cookies: dict[str, str] | None = None) -> Answer:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10, source_address=(source, 0))
        hdrs = dict(headers or {})
        if cookies:
            hdrs["Cookie"] = "; ".join(f"{k}={v}" for k, v in cookies.items())
        conn.request(method, path, body=body, headers=hdrs)
        resp = conn.getresponse()
        got: dict[str, list[str]] = {}
        for k, v in resp.getheaders():
            got.setdefault(k.lower(), []).append(v)
        answer = Answer(resp.status, got, resp.read().decode())
        conn.close()
        return answer

    def login_form(self, source: str = "127.0.0.1") -> tuple[str, str]:
        """(login cookie, csrf) of a fresh login form; the pair can be posted again and again."""
        page = self.request("GET", "/login", source=source)
        csrf = re.search(r'name="?csrf"? value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
        cookie = page.cookie("wire_login")
        assert cookie
        return cookie, csrf

    def login(self, token: str, source: str = "127.0.0.1", form: tuple[str, str] | None = None) -> Answer:
        cookie, csrf = form or self.login_form(source)
        return self.request("POST", "/login", source=source, cookies={"wire_login": cookie},
                            body=urlencode({"csrf": csrf, "token": token}).encode(),
                            headers={"Content-Type": "application/x-www-form-urlencoded"})

    def reingest(self, token: str | None, source: str = "127.0.0.1", xff: str | None = None) -> Answer:
        headers = {"Content-Type": "application/json"}
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        if xff is not None:
            headers["X-Forwarded-For"] = xff
        body = json.dumps({"urls": ["https://news.example.com/a"]}).encode()
        return self.request("POST", "/reingest", source=source, body=body, headers=headers)

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def make_deps(r: redis.Redis, redis_url: str, prefix: str, **env: str) -> Deps:
    return Deps.create(test_settings(redis_url, prefix, **env), parse_sources(SOURCES, "s.yaml"), client=r)


@pytest.fixture
def wire(r: redis.Redis, redis_url: str, prefix: str) -> Iterator[Wire]:
    w = Wire(make_deps(r, redis_url, prefix, WIRE_ADMIN_TOKEN=TOKEN))
    yield w
    w.close()


# ----------------------------------------------------------------------------- finding 12: limiters


def fresh_window() -> None:
    """Start a limiter test well inside a minute: the counts are per clock minute."""
    if time.time() % 60 > 45:
        time.sleep(60 - time.time() % 60 + 0.2)


def test_login_limiter_counts_each_client_apart(wire: Wire) -> None:
    """Wrong guesses from one address lock out that address only: the admin elsewhere still logs in."""
    fresh_window()
    form = wire.login_form("127.0.0.2")
    statuses = [wire.login("wrong", "127.0.0.2", form).status for _ in range(12)]
    assert statuses[:10] == [401] * 10 and statuses[10:] == [429, 429], statuses
    locked = wire.login(TOKEN, "127.0.0.2", form)
    assert locked.status == 429 and int(locked.headers["retry-after"][0]) in range(1, 61), locked
    assert wire.login(TOKEN, "127.0.0.3").status == 303  # another client: not locked out


def test_a_burst_of_guesses_cannot_slip_through(wire: Wire) -> None:
    """30 wrong logins sent at the same instant from one client: at most 10 get their token compared."""
    fresh_window()
    form = wire.login_form("127.0.0.4")
    barrier = threading.Barrier(30)
    statuses: list[int] = []

    def guess() -> None:
        barrier.wait()
        statuses.append(wire.login("wrong", "127.0.0.4", form).status)

    threads = [threading.Thread(target=guess) for _ in range(30)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert len(statuses) == 30 and statuses.count(401) == 10 and statuses.count(429) == 20, sorted(statuses)


def test_bearer_api_limits_wrong_tokens_per_client(wire: Wire) -> None:
    """POST /reingest: 10 wrong tokens a minute per client, then 429 (even with the right token) for that
    client only; a spoofed X-Forwarded-For does not move a client to another count."""
    fresh_window()
    statuses = [wire.reingest("wrong", "127.0.0.5", xff=f"198.51.100.{i}").status for i in range(11)]
    assert statuses == [401] * 10 + [429], statuses
    limited = wire.reingest(TOKEN, "127.0.0.5")
    assert limited.status == 429 and "retry-after" in limited.headers, limited
    assert wire.reingest(TOKEN, "127.0.0.6").status == 202
    assert wire.reingest(None, "127.0.0.5").status == 429


def test_accepted_reingest_requests_are_capped(wire: Wire) -> None:
    """More than 60 accepted POST /reingest a minute (all clients together) are answered 429."""
    fresh_window()
    statuses = [wire.reingest(TOKEN, f"127.0.1.{i % 5 + 1}").status for i in range(61)]
    assert statuses == [202] * 60 + [429], statuses
    assert len(wire.enqueued) == statuses.count(202)


def test_forwarded_for_is_believed_only_from_trusted_proxies(r: redis.Redis, redis_url: str, prefix: str) -> None:
    """With WIRE_TRUSTED_PROXIES naming the proxy, each forwarded client has its own count."""
    fresh_window()
    w = Wire(make_deps(r, redis_url, prefix, WIRE_ADMIN_TOKEN=TOKEN, WIRE_TRUSTED_PROXIES="127.0.0.7"))
    try:
        first = [w.reingest("wrong", "127.0.0.7", xff="203.0.113.1, 127.0.0.7").status for _ in range(11)]
        assert first == [401] * 10 + [429], first
        assert w.reingest(TOKEN, "127.0.0.7", xff="203.0.113.2").status == 202
        # from an untrusted peer the header is ignored: 127.0.0.8 is counted as itself
        spoofed = [w.reingest("wrong", "127.0.0.8", xff=f"203.0.113.{i + 10}").status for i in range(11)]
        assert spoofed[-1] == 429, spoofed
    finally:
        w.close()


@pytest.mark.parametrize(("peer", "xff", "proxies", "client"), [
    ("127.0.0.2", "203.0.113.9", "", "127.0.0.2"),  # no trusted proxy: the header is ignored
    ("10.0.0.5", "203.0.113.9", "10.0.0.0/8", "203.0.113.9"),
    ("10.0.0.5", "198.51.100.1, 203.0.113.9, 10.0.0.6", "10.0.0.0/8", "203.0.113.9"),  # right-most untrusted
    ("10.0.0.5", "garbage, 10.0.0.6", "10.0.0.0/8", "10.0.0.6"),
    ("192.0.2.1", "203.0.113.9", "10.0.0.0/8", "192.0.2.1"),  # peer not a trusted proxy
    ("2001:db8:1:2:3:4:5:6", None, "", "2001:db8:1:2::/64"),  # an IPv6 client counts as its /64
    ("::ffff:127.0.0.9", None, "", "127.0.0.9"),
])
def test_client_of(peer: str, xff: str | None, proxies: str, client: str) -> None:
    """Which client a limiter counts, from the peer address and (only behind a trusted proxy) X-Forwarded-For."""
    assert client_of(peer, xff, parse_networks(proxies)) == client


def _start(args: list[str], env: dict[str, str], tmp_path: Path) -> subprocess.CompletedProcess[str] | None:
    """Run `wire ARGS`; None when it was still running after 20 s (it started instead of refusing)."""
    proc = subprocess.Popen([sys.executable, "-m", "worker.ops.cli", *args], env=env, cwd=ROOT, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGINT)
        try:
            proc.communicate(timeout=40)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
        return None
    return subprocess.CompletedProcess(args, proc.returncode, out, err)


@pytest.mark.parametrize("command", [["serve", "--host", "127.0.0.1", "--port", "0"], ["run"]])
def test_short_admin_token_is_refused_at_start(command: list[str], tmp_path: Path, redis_url: str,
                                               prefix: str) -> None:
    """`wire serve` and `wire run` with a 31-character WIRE_ADMIN_TOKEN exit 2 with one line naming the
    variable, and start nothing."""
    sources = tmp_path / "sources.yaml"
    sources.write_text(SOURCES)
    env = wire_env(redis_url=redis_url, key_prefix=prefix, sources=sources, data_dir=tmp_path / "data",
                   admin_token="x" * 31)
    done = _start(command, env, tmp_path)
    assert done is not None, f"wire {command[0]} started with a 31-character admin token"
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2 and len(lines) == 1, done
    assert "WIRE_ADMIN_TOKEN" in lines[0] and "32" in lines[0] and "Traceback" not in done.stderr, lines


# ----------------------------------------------------------------------------- finding 14: sessions


def test_session_ends_when_the_admin_token_changes(r: redis.Redis, redis_url: str, prefix: str) -> None:
    """A session made with the old token is ended by a server configured with a new one: redirected to
    the login page, its cookie cleared, its key deleted, and its forms do nothing."""
    old = Wire(make_deps(r, redis_url, prefix, WIRE_ADMIN_TOKEN=TOKEN))
    try:
        answer = old.login(TOKEN)
        assert answer.status == 303
        session = answer.cookie("wire_session")
        assert session
        page = old.request("GET", "/dead", cookies={"wire_session": session})
        csrf = re.search(r'name="?csrf"? value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
        assert old.request("GET", "/dead/purge", cookies={"wire_session": session}).status == 200
    finally:
        old.close()
    r.xadd(f"{prefix}:dead", {"stage": "fetch", "url": "https://news.example.com/x", "source": "example"})
    new = Wire(make_deps(r, redis_url, prefix, WIRE_ADMIN_TOKEN=OTHER_TOKEN))
    try:
        ended = new.request("POST", "/dead/purge", cookies={"wire_session": session},
                            body=urlencode({"csrf": csrf, "confirm": "yes"}).encode(),
                            headers={"Content-Type": "application/x-www-form-urlencoded"})
        assert ended.status == 303 and ended.headers["location"] == ["/login"], ended
        assert ended.cookie("wire_session") == "", ended.headers
        assert r.xlen(f"{prefix}:dead") == 1  # the purge did not run
        assert not r.exists(f"{prefix}:console:session:{session}")
        again = new.request("GET", "/dead/purge", cookies={"wire_session": session})
        assert again.status == 403  # no session any more: log in first
        fresh = new.login(OTHER_TOKEN)
        assert fresh.status == 303
        assert new.request("GET", "/dead/purge", cookies={"wire_session": fresh.cookie("wire_session") or ""}
                           ).status == 200
    finally:
        new.close()


# ----------------------------------------------------------------------------- finding 13: credentials


SECRETS = ("hunter2", "SECRETKEY", "SIGVALUE", "TOKVALUE")
CREDENTIALED = "http://editor:hunter2@{host}/rss?api_key=SECRETKEY&edition=uk"


@pytest.mark.parametrize(("text", "shown"), [
    ("http://user:hunter2@h/rss?api_key=SECRETKEY&id=1: HTTP 500", "http://***:***@h/rss?api_key=***&id=1: HTTP 500"),
    ("HTTPConnectionPool(host='h', port=80): Max retries exceeded with url: /rss?token=TOKVALUE&x=1 (Caused by X)",
     "HTTPConnectionPool(host='h', port=80): Max retries exceeded with url: /rss?token=***&x=1 (Caused by X)"),
    ("fetch failed (https://h/x?X-Amz-Signature=SIGVALUE&X-Amz-Credential=c).",
     "fetch failed (https://h/x?X-Amz-Signature=***&X-Amz-Credential=***)."),
    ("https://h/cb#access_token=TOKVALUE&state=1", "https://h/cb#access_token=***&state=1"),
    ("https://h/a?accessToken=TOKVALUE&client_secret=s&keyword=k&author=me",
     "https://h/a?accessToken=***&client_secret=***&keyword=k&author=me"),
    ("https://h/a?PASSWORD=hunter2&sig=SIGVALUE", "https://h/a?PASSWORD=***&sig=***"),
    ("HTTP 503 from feed", "HTTP 503 from feed"),
])
def test_redact_text(text: str, shown: str) -> None:
    """Credentials in URLs inside free text (userinfo, secret-looking query and fragment values) are masked."""
    from worker.urls import redact_text

    assert redact_text(text) == shown


def _assert_no_secret(where: str, text: str) -> None:
    leaked = [s for s in SECRETS if s in text]
    assert not leaked, f"{where} shows {leaked}: ...{text[max(0, text.find(leaked[0]) - 200):][:400]}"


def test_credentials_are_never_shown_without_login(r: redis.Redis, redis_url: str, prefix: str,
                                                   tmp_path: Path) -> None:
    """Two failing feeds: one whose URL carries a password and an API key (refused before any request:
    userinfo in the host part) and one with the API key alone (asked, and answered 500 by a real loopback
    server). Each source's last error is stored redacted, and neither they, an older raw value, a dead
    letter nor a published URL with a signature shows a secret on /status, `wire status --json` or any
    console page."""
    from worker.pipeline import discover as pipeline
    from worker.publish import dead_letter, stream_fields

    feed_server = SiteServer()
    failing = feed_server.add("failing", "127.0.0.21")
    failing.routes["/robots.txt"] = (404, {}, b"")
    failing.routes["/rss?api_key=SECRETKEY&edition=uk"] = (500, {}, b"")
    host = failing.base.removeprefix("http://")
    sources = (f"sources:\n- name: locked\n  feeds: ['{CREDENTIALED.format(host=host)}']\n  interval: 1m\n"
               f"- name: keyed\n  feeds: ['{CREDENTIALED.format(host=host).replace('editor:hunter2@', '')}']\n"
               f"  interval: 1m\n"
               f"- name: older\n  feeds: [https://older.example.com/feed]\n  interval: 1m\n")
    deps = Deps.create(test_settings(redis_url, prefix, WIRE_ADMIN_TOKEN=TOKEN), parse_sources(sources, "s.yaml"),
                       client=r)
    w = None
    try:
        for name in ("locked", "keyed"):
            report = pipeline.discover(name, deps, lambda found: None)
            assert report.errors, f"the failing feed of {name} gave no error"
            stored = r.hget(deps.keys.source_state(name), "last_error")
            assert stored, f"no last_error stored for {name}"
            _assert_no_secret(f"the stored last_error of {name}", stored.decode())
        assert [q.status for q in feed_server.requests("failing", "/rss?api_key=SECRETKEY&edition=uk")] == [500]
        # a value stored raw by an older version, a dead letter and a published URL carrying secrets
        r.hset(deps.keys.source_state("older"), "last_error",
               f"{CREDENTIALED.format(host='older.example.com')}: HTTP 401 (sig=SIGVALUE)")
        dead_letter(r, deps.keys, stage="fetch", reason="http_500",
                    error=f"HTTP 500 for {CREDENTIALED.format(host='dead.example.com')}&token=TOKVALUE",
                    url=CREDENTIALED.format(host="dead.example.com"), source="locked",
                    payload={"url": CREDENTIALED.format(host="dead.example.com"), "source": "locked"}, attempts=3)
        item_url = "https://cdn.example.com/story?sig=SIGVALUE&id=7"
        item = {"schema_version": 1, "id": "5a5a-1", "event": "new", "story_id": "5a5a5a5a5a5a5a5a", "version": 1, "url": item_url,
                "canonical_url": item_url, "source": "locked", "title": "A story", "body": "Text."}
        entry = r.xadd(deps.keys.items_stream, stream_fields(item)).decode()
        w = Wire(deps)
        pages = {path: w.request("GET", path) for path in ("/", "/status", "/dead", "/stories", f"/story/{entry}")}
        for path, answer in pages.items():
            assert answer.status == 200, (path, answer.status)
            _assert_no_secret(path, answer.text)
        status = json.loads(pages["/status"].text)
        errors = {s["name"]: s["last_error"] for s in status["sources"]}
        assert "***" in errors["locked"] and "***" in errors["keyed"] and "***" in errors["older"], errors
        assert "dead.example.com/rss?api_key=***" in pages["/dead"].text
        sources_file = tmp_path / "sources.yaml"
        sources_file.write_text(sources)
        env = wire_env(redis_url=redis_url, key_prefix=prefix, sources=sources_file)
        cli = subprocess.run([sys.executable, "-m", "worker.ops.cli", "status", "--json"], env=env, cwd=ROOT,
                             capture_output=True, text=True, timeout=60)
        assert cli.returncode == 0, cli.stderr
        _assert_no_secret("wire status --json", cli.stdout)
    finally:
        if w is not None:
            w.close()
        feed_server.stop()


def test_log_lines_mask_secret_query_values_too() -> None:
    """The log processor masks secret query values as well as userinfo (one redaction, worker.urls)."""
    from worker.logs import _redact

    line = json.dumps(dict(_redact(None, "warning", {
        "event": "discovery error", "error": f"{CREDENTIALED.format(host='h')}: HTTP 500",
        "url": "https://h/a?X-Amz-Signature=SIGVALUE"})))
    assert "discovery error" in line and "api_key=***" in line
    _assert_no_secret("a log line", line)
