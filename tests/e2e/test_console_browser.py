"""The console in headless Chromium against a live `wire serve` subprocess and real Redis.

Needs Debian's `chromium` and `chromium-driver` and the `selenium` package;
skips with the reason when any is missing. The server is the real CLI
(`python -m worker.ops.cli serve`) so re-ingest and replay go through Celery's
`send_task` into the broker's `fetch` list, which the test reads. Redis db 3
of the private test server keeps Celery's (unprefixed) queue lists away from
other tests. Set WIRE_CONSOLE_SCREENSHOTS=DIR to keep a PNG of each page
(docs/console/ holds the ones in the docs).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from tests.support.console import SOURCES, seed
from tests.support.env import wire_env
from tests.support.helpers import test_settings, wait_for
from tests.support.paths import ROOT
from worker.ops.redis_server import RedisProcess, free_port
from worker.ops.status import queue_depths
from worker.pipeline.deps import Deps
from worker.settings import parse_sources

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
TOKEN = "browser-test-token-0123456789abcdef"
DB = 3

try:
    from selenium import webdriver
    from selenium.common.exceptions import WebDriverException
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
except ImportError:  # pragma: no cover - depends on the environment
    webdriver = None  # type: ignore[assignment]


def _missing() -> str | None:
    if webdriver is None:
        return "selenium is not installed (pip install selenium)"
    for path in (CHROMIUM, CHROMEDRIVER):
        if not os.access(path, os.X_OK):
            return f"{path} not found (apt-get install chromium chromium-driver)"
    return None


pytestmark = pytest.mark.skipif(_missing() is not None, reason=_missing() or "")


class Serve:
    """`wire serve` as a subprocess on a free port."""

    def __init__(self, tmp: Path, url: str, prefix: str, token: str | None) -> None:
        sources = tmp / f"sources-{prefix}.yaml"
        sources.write_text(SOURCES)
        self.port = free_port()
        env = wire_env(redis_url=url, broker_url=url, key_prefix=prefix, sources=sources,
                       allow_private_addresses="true", admin_token=token or None)
        self.log = tmp / f"serve-{prefix}.log"
        self.proc = subprocess.Popen([sys.executable, "-m", "worker.ops.cli", "serve", "--host", "127.0.0.1",
                                      "--port", str(self.port)], env=env, cwd=ROOT, start_new_session=True,
                                     stdout=self.log.open("wb"), stderr=subprocess.STDOUT)
        self.base = f"http://127.0.0.1:{self.port}"
        wait_for(self._up, timeout=30, what=f"wire serve on {self.base}")

    def _up(self) -> bool:
        if self.proc.poll() is not None:
            raise AssertionError(f"wire serve exited: {self.log.read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(self.base + "/healthz", timeout=2):
                return True
        except OSError:
            return False

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture
def db_url(redis_server: RedisProcess) -> str:
    return redis_server.url.rsplit("/", 1)[0] + f"/{DB}" if redis_server.url.count("/") > 2 else \
        redis_server.url + f"/{DB}"


@pytest.fixture
def rdb(db_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(db_url)
    client.flushdb()
    yield client
    client.flushdb()
    client.close()


@pytest.fixture
def seeded(rdb: redis.Redis, db_url: str, prefix: str) -> Deps:
    deps = Deps.create(test_settings(db_url, prefix), parse_sources(SOURCES, "s.yaml"), client=rdb)
    seed(deps, time.time())
    return deps


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Any]:
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--no-first-run", f"--user-data-dir={tmp_path / 'chromium-profile'}", "--window-size=1280,900"):
        opts.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
    driver.set_page_load_timeout(20)
    yield driver
    driver.quit()


def shot(driver: Any, name: str, width: int = 1280) -> None:
    target = os.environ.get("WIRE_CONSOLE_SCREENSHOTS")
    if not target:
        return
    Path(target).mkdir(parents=True, exist_ok=True)
    height = driver.execute_script("return Math.min(document.documentElement.scrollHeight, 2400)")
    driver.set_window_size(width, max(600, int(height) + 120))
    driver.save_screenshot(str(Path(target) / f"{name}.png"))
    driver.set_window_size(1280, 900)


def text(driver: Any) -> str:
    """The page's visible text; "" while a navigation replaces the document under us."""
    try:
        return str(driver.find_element(By.TAG_NAME, "body").text)
    except WebDriverException:  # stale element, node gone, no body yet: all mean "mid-navigation"
        return ""


def fetch_depth(r: redis.Redis) -> int:
    return queue_depths(r)["fetch"]


def test_console_end_to_end(browser: Any, seeded: Deps, rdb: redis.Redis, db_url: str, prefix: str,
                            tmp_path: Path) -> None:
    """Stale source flagged; refused before login and on forged forms; login; replay; re-ingest; purge."""
    serve = Serve(tmp_path, db_url, prefix, TOKEN)
    try:
        b = browser
        # sources: the stale source is flagged, the fresh one is not
        b.get(serve.base + "/")
        stale_row = b.find_element(By.XPATH, "//tr[th[normalize-space()='stale']]")
        fresh_row = b.find_element(By.XPATH, "//tr[th[normalize-space()='fresh']]")
        assert "STALE" in stale_row.text and "robots_unavailable" in stale_row.text
        assert "STALE" not in fresh_row.text
        assert "Log in" in text(b)
        shot(b, "sources")

        # not logged in: no action buttons, and the purge page is refused
        b.get(serve.base + "/dead")
        assert not b.find_elements(By.XPATH, "//button[normalize-space()='Replay']")
        b.get(serve.base + "/dead/purge")
        assert "403" in b.title and "Log in with the admin token first" in text(b)

        # log in with a wrong token, then the right one
        b.get(serve.base + "/login")
        b.find_element(By.ID, "token").send_keys("wrong")
        b.find_element(By.XPATH, "//button[@type='submit']").click()
        wait_for(lambda: "Wrong token." in text(b), timeout=10, what="wrong-token message")
        b.find_element(By.ID, "token").send_keys(TOKEN)
        shot(b, "login")
        b.find_element(By.XPATH, "//button[@type='submit']").click()
        wait_for(lambda: "Signed in as admin" in text(b), timeout=10, what="signed-in header")
        cookie = b.get_cookie("wire_session")
        assert cookie["httpOnly"] is True and cookie["sameSite"] == "Strict"

        # dead letters: replay one, it leaves the list and lands in the fetch queue
        b.get(serve.base + "/dead")
        rows = b.find_elements(By.XPATH, "//tbody/tr")
        assert len(rows) == 2
        first_id = rows[0].get_attribute("id").removeprefix("dl-")
        shot(b, "dead-letters")
        before = fetch_depth(rdb)
        rows[0].find_element(By.XPATH, ".//button[normalize-space()='Replay']").click()
        wait_for(lambda: "1 dead letter(s) replayed." in text(b), timeout=10, what="replay flash")
        assert first_id not in text(b)
        assert len(b.find_elements(By.XPATH, "//tbody/tr")) == 1
        assert fetch_depth(rdb) == before + 1

        # forged forms: a missing and a wrong CSRF token are refused, nothing happens
        for value in (None, "forged-token"):
            b.get(serve.base + "/dead")
            b.execute_script(
                "const f = document.querySelector('form[action=\"/dead/replay\"]');"
                "const c = f.querySelector('input[name=csrf]');"
                "if (arguments[0] === null) { c.remove(); } else { c.value = arguments[0]; }"
                "f.submit();", value)
            wait_for(lambda: "403" in b.title, timeout=10, what="403 page")
            assert "CSRF token is missing or wrong" in text(b)
        assert rdb.xlen(seeded.keys.dead_stream) == 1 and fetch_depth(rdb) == before + 1

        # re-ingest: two URLs with force; the result lists them and the fetch queue grows by two
        b.get(serve.base + "/reingest")
        b.find_element(By.ID, "urls").send_keys(
            "https://fresh.example.com/news/cut-off?utm_source=x\nhttps://fresh.example.com/news/other")
        b.find_element(By.NAME, "force").click()
        b.find_element(By.XPATH, "//button[normalize-space()='Re-ingest']").click()
        wait_for(lambda: "Enqueued 2 URL(s) with force" in text(b), timeout=10, what="re-ingest result")
        assert "https://fresh.example.com/news/cut-off" in text(b) and "utm_source" not in text(b)
        shot(b, "reingest")
        assert fetch_depth(rdb) == before + 3
        b.get(serve.base + "/queues")
        fetch_row = b.find_element(By.XPATH, "//tr[th[normalize-space()='fetch']]")
        assert fetch_row.text.split()[-1] == str(before + 3)
        shot(b, "queues")

        # stories and one story page with its copy
        b.get(serve.base + "/stories")
        assert "<script>" in text(b)  # the hostile title is shown as text
        shot(b, "stories")
        b.find_element(By.LINK_TEXT, "Harbour strike spreads").click()
        wait_for(lambda: "Copies" in text(b), timeout=10, what="story page")
        assert "https://stale.example.org/copy/strike" in text(b)
        shot(b, "story")

        # purge with confirmation
        b.get(serve.base + "/dead")
        b.find_element(By.LINK_TEXT, "Purge…").click()
        shot(b, "purge-confirm")
        b.find_element(By.NAME, "confirm").click()
        b.find_element(By.XPATH, "//button[normalize-space()='Purge']").click()
        wait_for(lambda: "1 dead letter(s) deleted." in text(b), timeout=10, what="purge flash")
        assert rdb.xlen(seeded.keys.dead_stream) == 0

        # phone width: the sources page still fits (tables scroll inside their own box)
        b.get(serve.base + "/")
        b.set_window_size(390, 844)
        assert b.execute_script("return document.documentElement.scrollWidth") <= 400
        if os.environ.get("WIRE_CONSOLE_SCREENSHOTS"):
            b.save_screenshot(str(Path(os.environ["WIRE_CONSOLE_SCREENSHOTS"]) / "sources-phone.png"))
    finally:
        serve.stop()


def test_console_without_token_is_read_only(browser: Any, seeded: Deps, rdb: redis.Redis, db_url: str,
                                            prefix: str, tmp_path: Path) -> None:
    """No WIRE_ADMIN_TOKEN: pages render, no action is offered, and a posted action answers 403."""
    serve = Serve(tmp_path, db_url, prefix, None)
    try:
        b = browser
        b.get(serve.base + "/dead")
        assert "Read-only" in text(b)
        assert not b.find_elements(By.TAG_NAME, "button")
        b.get(serve.base + "/reingest")
        assert not b.find_elements(By.ID, "urls") and "admin token is not configured" in text(b)
        # a hand-made form posting to the action is refused
        b.execute_script(
            "const f = document.createElement('form'); f.method = 'post'; f.action = '/dead/replay';"
            "const i = document.createElement('input'); i.name = 'all'; i.value = '1'; f.appendChild(i);"
            "document.body.appendChild(f); f.submit();")
        wait_for(lambda: "403" in b.title, timeout=10, what="403 page")
        assert "read-only" in text(b)
        assert rdb.xlen(seeded.keys.dead_stream) == 2 and fetch_depth(rdb) == 0
    finally:
        serve.stop()
