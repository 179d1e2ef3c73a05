"""The web console over a real socket and real Redis: pages, escaping, sessions, CSRF, actions."""

from __future__ import annotations

import http.client
import re
import threading
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode

import pytest
import redis

from tests.support.console import SOURCES, seed
from tests.support.helpers import test_settings
from worker.console import activity
from worker.metrics import MetricsBatch
from worker.ops.serve import serve
from worker.pipeline.deps import Deps
from worker.publish import dead_letter
from worker.settings import parse_sources

TOKEN = "s3cret-0123456789abcdef0123456789"  # WIRE_ADMIN_TOKEN: at least 32 characters

class Console:
    """A running `wire serve` plus what its enqueue callables received."""

    def __init__(self, deps: Deps) -> None:
        self.deps = deps
        self.enqueued: list[tuple[dict[str, Any], bool]] = []
        self.replayed: list[tuple[str, dict[str, Any]]] = []
        self.httpd = serve(deps, "127.0.0.1", 0, lambda c, f: self.enqueued.append((c, f)), lambda s: None,
                           lambda stage, p: self.replayed.append((stage, p)))
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        self.port = self.httpd.server_address[1]
        self.base = f"http://127.0.0.1:{self.port}"

    def request(self, method: str, path: str, form: dict[str, str] | None = None,
                cookies: dict[str, str] | None = None) -> tuple[int, dict[str, list[str]], str]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        headers = {}
        body = None
        if form is not None:
            body = urlencode(form)
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        if cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in cookies.items())
        conn.request(method, path, body=body, headers=headers)
        resp = conn.getresponse()
        got: dict[str, list[str]] = {}
        for k, v in resp.getheaders():
            got.setdefault(k.lower(), []).append(v)
        text = resp.read().decode()
        conn.close()
        return resp.status, got, text

    def login(self, token: str = TOKEN) -> dict[str, str]:
        """Log in like a browser; returns the session cookie and the CSRF token of the next page."""
        _, headers, page = self.request("GET", "/login")
        login = _cookie(headers, "wire_login")
        csrf = re.search(r'name="?csrf"? value="([^"]+)"', page).group(1)  # type: ignore[union-attr]
        status, headers, _ = self.request("POST", "/login", {"csrf": csrf, "token": token}, {"wire_login": login})
        assert status == 303, status
        session = _cookie(headers, "wire_session")
        _, _, page = self.request("GET", "/dead", cookies={"wire_session": session})
        return {"session": session, "csrf": re.search(r'name="?csrf"? value="([^"]+)"', page).group(1)}  # type: ignore[union-attr]

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def _cookie(headers: dict[str, list[str]], name: str) -> str:
    for line in headers.get("set-cookie", []):
        if line.startswith(name + "="):
            return line.split(";", 1)[0].split("=", 1)[1]
    raise AssertionError(f"no {name} cookie in {headers.get('set-cookie')}")


@pytest.fixture
def console(r: redis.Redis, redis_url: str, prefix: str) -> Iterator[Console]:
    deps = Deps.create(test_settings(redis_url, prefix, WIRE_ADMIN_TOKEN=TOKEN),
                       parse_sources(SOURCES, "s.yaml"), client=r)
    seed(deps, time.time())
    c = Console(deps)
    yield c
    c.close()


@pytest.fixture
def readonly(r: redis.Redis, redis_url: str, prefix: str) -> Iterator[Console]:
    deps = Deps.create(test_settings(redis_url, prefix), parse_sources(SOURCES, "s.yaml"), client=r)
    seed(deps, time.time())
    c = Console(deps)
    yield c
    c.close()


def test_every_page_renders_and_escapes(console: Console) -> None:
    """Each page answers 200 with a viewport meta; hostile titles and errors never appear unescaped."""
    _, _, stories = console.request("GET", "/stories")
    entry = re.search(r'href="/story/([^"]+)"', stories).group(1)  # type: ignore[union-attr]
    for path in ("/", "/queues", "/stories", "/dead", "/reingest", "/login", f"/story/{entry}"):
        status, headers, page = console.request("GET", path)
        assert status == 200, path
        assert 'name=viewport content="width=device-width' in page
        assert "<script" not in page and "<img" not in page, path
        assert "default-src 'none'" in headers["content-security-policy"][0]
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in stories


def test_sources_page_flags_stale_and_shows_counts_and_backoff(console: Console) -> None:
    """The stale source is flagged, its host pause is shown, and the hour's counts are deltas of snapshots."""
    _, _, page = console.request("GET", "/")
    assert "Counts cover the last 30m" in page
    row = re.search(r"<tr class=stale><th scope=row>stale</th>.*?</tr>", page).group(0)  # type: ignore[union-attr]
    assert "STALE" in row and "stale.example.org: robots_unavailable" in row and "HTTP 503 from feed" in row
    fresh = re.search(r"<tr><th scope=row>fresh</th>.*?</tr>", page).group(0)  # type: ignore[union-attr]
    assert "STALE" not in fresh
    cells = re.findall(r"<td class=num>(\d+)</td>", fresh)
    assert cells == ["9", "5", "0", "2"]  # fetched (7 ok + 2 failed), published, duplicates, failures
    # pages counted after the view add to the same window
    batch = MetricsBatch()
    batch.inc("wire_pages_fetched_total", 3, source="fresh", status="200")
    batch.inc("wire_extract_failures_total", 1, source="fresh", reason="empty")
    batch.flush(console.deps.redis, console.deps.keys.metrics())
    got = activity.last_hour(console.deps.redis, console.deps.keys.prefix, console.deps.keys.metrics(),
                             time.time())
    assert got.counts["fresh"] == {"fetched": 12, "published": 5, "duplicates": 0, "failures": 3}
    assert 1790 < got.window_seconds < 1900


def test_queues_page_shows_groups_pending_and_lag(console: Console) -> None:
    """The queues page lists each consumer group of the items stream with its pending count and lag."""
    console.deps.redis.lpush("fetch", "{}")
    try:
        _, _, page = console.request("GET", "/queues")
    finally:
        console.deps.redis.delete("fetch")
    assert "<tr><th scope=row>fetch</th><td class=num>1</td></tr>" in page
    row = re.search(r"<tr><th scope=row>[^<]*:items</th>.*?</tr>", page).group(0)  # type: ignore[union-attr]
    assert re.findall(r"<td[^>]*>([^<]*)</td>", row) == ["2", "archive", "1", "1", "1"]


def test_story_page_shows_versions_copies_and_decisions(console: Console) -> None:
    """The story page lists the dedup record: the new version and the duplicate copy from another source."""
    _, _, stories = console.request("GET", "/stories")
    entry = re.search(r'href="/story/([^"]+)">Harbour strike spreads<', stories).group(1)  # type: ignore[union-attr]
    status, _, page = console.request("GET", f"/story/{entry}")
    assert status == 200
    assert "https://stale.example.org/copy/strike" in page  # the copy
    assert "duplicate" in page and "Paragraph 11 of a long wire story" in page
    assert console.request("GET", "/story/0-1")[0] == 404
    assert console.request("GET", "/story/not-an-id")[0] == 404
    status, _, page = console.request("GET", "/dead?after=%3Cjunk%3E")
    assert status == 400 and "&lt;junk&gt;" in page


def test_login_session_cookie_flags_and_wrong_token(console: Console) -> None:
    """Login sets an HttpOnly SameSite=Strict cookie; a wrong token is 401; a forged login form is 403."""
    _, headers, page = console.request("GET", "/login")
    login = _cookie(headers, "wire_login")
    csrf = re.search(r'name="?csrf"? value="([^"]+)"', page).group(1)  # type: ignore[union-attr]
    assert console.request("POST", "/login", {"csrf": csrf, "token": "nope"}, {"wire_login": login})[0] == 401
    assert console.request("POST", "/login", {"csrf": "forged", "token": TOKEN}, {"wire_login": login})[0] == 403
    assert console.request("POST", "/login", {"csrf": csrf, "token": TOKEN})[0] == 403
    status, headers, _ = console.request("POST", "/login", {"csrf": csrf, "token": TOKEN}, {"wire_login": login})
    assert status == 303
    line = next(x for x in headers["set-cookie"] if x.startswith("wire_session="))
    assert "HttpOnly" in line and "SameSite=Strict" in line
    assert len(line.split(";")[0].split("=", 1)[1]) >= 40


def test_actions_need_session_and_csrf(console: Console) -> None:
    """Replay, purge and re-ingest are refused (403) without a session, without CSRF and with a wrong one."""
    s = console.login()
    forms = [("/dead/replay", {"all": "1"}), ("/dead/purge", {"confirm": "yes"}),
             ("/reingest/run", {"urls": "https://fresh.example.com/x"})]
    for path, form in forms:
        assert console.request("POST", path, form)[0] == 403, path
        assert console.request("POST", path, form, {"wire_session": s["session"]})[0] == 403, path
        assert console.request("POST", path, {**form, "csrf": "x" * 43}, {"wire_session": s["session"]})[0] == 403
        assert console.request("POST", path, {**form, "csrf": s["csrf"]}, {"wire_session": "forged"})[0] == 403
    assert console.enqueued == [] and console.replayed == []
    assert console.deps.redis.xlen(console.deps.keys.dead_stream) == 2


def test_replay_one_purge_and_reingest_through_shared_code(console: Console) -> None:
    """Replay one dead letter (it leaves the stream), re-ingest URLs with force, purge with confirmation."""
    s = console.login()
    cookies = {"wire_session": s["session"]}
    first = console.deps.redis.xrange(console.deps.keys.dead_stream)[0][0].decode()
    status, headers, _ = console.request("POST", "/dead/replay", {"id": first, "csrf": s["csrf"]}, cookies)
    assert status == 303 and headers["location"] == ["/dead"]
    assert console.replayed == [("fetch", {"url": "https://fresh.example.com/dead/0", "source": "fresh"})]
    _, _, page = console.request("GET", "/dead", cookies=cookies)
    assert "1 dead letter(s) replayed." in page and first not in page
    status, _, page = console.request("POST", "/reingest/run", {
        "urls": "https://fresh.example.com/a?utm_source=x\n\nhttps://fresh.example.com/b", "force": "1",
        "csrf": s["csrf"]}, cookies)
    assert status == 200 and "Enqueued 2 URL(s) with force" in page
    assert [(c["url"], f) for c, f in console.enqueued] == [("https://fresh.example.com/a", True),
                                                           ("https://fresh.example.com/b", True)]
    status, _, page = console.request("POST", "/reingest/run", {"source": "nope", "csrf": s["csrf"]}, cookies)
    assert status == 400 and "known sources" in page
    assert console.request("POST", "/dead/purge", {"csrf": s["csrf"]}, cookies)[0] == 400
    assert console.deps.redis.xlen(console.deps.keys.dead_stream) == 1
    assert console.request("POST", "/dead/purge", {"csrf": s["csrf"], "confirm": "yes"}, cookies)[0] == 303
    assert console.deps.redis.xlen(console.deps.keys.dead_stream) == 0
    status, headers, _ = console.request("POST", "/logout", {"csrf": s["csrf"]}, cookies)
    assert status == 303
    assert console.request("POST", "/dead/replay", {"all": "1", "csrf": s["csrf"]}, cookies)[0] == 403


def test_read_only_without_token(readonly: Console) -> None:
    """No admin token: action buttons are absent and every action answers 403."""
    _, _, page = readonly.request("GET", "/dead")
    assert "Replay" not in page.split("</header>", 1)[1].replace("Replay re-enqueues", "")
    assert "read-only" in page.lower()
    _, _, page = readonly.request("GET", "/reingest")
    assert "<textarea" not in page
    for path in ("/dead/replay", "/dead/purge", "/reingest/run", "/login"):
        assert readonly.request("POST", path, {"all": "1", "csrf": "x", "token": "anything"})[0] == 403, path
    assert readonly.request("GET", "/dead/purge")[0] == 403
    assert readonly.deps.redis.xlen(readonly.deps.keys.dead_stream) == 2 and readonly.enqueued == []


def test_javascript_urls_are_not_links(console: Console) -> None:
    """A dead letter whose URL is javascript: is shown as text, never as an href."""
    dead_letter(console.deps.redis, console.deps.keys, stage="fetch", reason="x", error="e",
                url="javascript:alert(1)", source="fresh", payload={}, attempts=1)
    _, _, page = console.request("GET", "/dead")
    assert "javascript:alert(1)" in page and 'href="javascript' not in page
