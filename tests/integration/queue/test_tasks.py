"""The task bodies in this process against real Redis, a real broker queue and loopback sites:
each item of a batch ends on its own, and a page that expired unprocessed is fetched again."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import redis

from tests.support.faultnet import article_page
from tests.support.helpers import test_settings
from tests.support.loopback import HTML, RSS, Site, SiteServer, header_drip
from worker.keys import TRAIL_MAX_EVENTS
from worker.models import Candidate, PageRef
from worker.ops.redis_server import RedisProcess
from worker.pipeline.deps import Deps
from worker.pipeline.fetch import fetch
from worker.pipeline.process import MAX_REFETCHES
from worker.queue import tasks
from worker.queue.app import create_app
from worker.settings import parse_sources
from worker.trail import read as read_trail

DB = 15  # a database of the test server of its own: the Celery queues are not under the key prefix


@pytest.fixture
def site() -> Iterator[Site]:
    server = SiteServer()
    s = server.add("h", "127.0.0.41")
    s.routes["/robots.txt"] = (404, {}, "")
    s.routes["/feed"] = (200, RSS, '<rss version="2.0"><channel></channel></rss>')
    for i in range(1, 4):
        s.routes[f"/ok-{i}.html"] = (200, HTML, article_page(400 + i, "Hostile Herald"))
    s.routes["/bad-location.html"] = (302, {"Location": "http://[::1"}, "")
    s.routes["/bad-retry.html"] = (503, {"Retry-After": "²", "Content-Type": "text/html"}, "busy")
    yield s
    server.stop()


@pytest.fixture
def d(site: Site, redis_server: RedisProcess, prefix: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Deps]:
    url = f"redis://127.0.0.1:{redis_server.port}/{DB}"
    client = redis.Redis.from_url(url)
    client.flushdb()
    settings = test_settings(url, prefix)
    sources = parse_sources(f"sources:\n- name: h\n  feeds: ['{site.base}/feed']\n  rate: 50\n", "t.yaml")
    create_app(settings, sources)  # the broker: this database of the test server
    deps = Deps.create(settings, sources, client=client)
    monkeypatch.setattr(tasks, "_deps", deps)
    yield deps
    client.close()


def _dead(d: Deps) -> list[dict[str, Any]]:
    return [{k.decode(): v.decode() for k, v in f.items()} for _, f in d.redis.xrange(d.keys.dead_stream)]


def _queued(d: Deps, queue: str) -> list[Any]:
    """The first argument of every task waiting in `queue` (its batch, or its one item)."""
    import base64

    out = []
    for raw in d.redis.lrange(queue, 0, -1):
        message = json.loads(raw)
        out.append(json.loads(base64.b64decode(message["body"]))[0][0])
    return out


def test_each_url_of_a_fetch_batch_ends_on_its_own(d: Deps, site: Site) -> None:
    """One fetch batch holds honest URLs, a redirect to `http://[::1` (urljoin raises ValueError), a 503
    whose `Retry-After: ²` passes isdigit() but not float(), and four items that are no candidates:
    the honest pages are stored and handed to process; the malformed items are dead-lettered as
    `malformed_task` with what was there; each hostile URL ends on its own with its reason in its trail
    (dead-lettered with the exception's type and message while the fetcher raises ValueError for it;
    skipped, or retried as a task of its own, where the fetcher names the fault itself)."""
    ok = [{"url": f"{site.base}/ok-{i}.html", "source": "h"} for i in range(1, 4)]
    bad_location = {"url": f"{site.base}/bad-location.html", "source": "h"}
    bad_retry = {"url": f"{site.base}/bad-retry.html", "source": "h"}
    malformed: list[Any] = [{"url": f"{site.base}/no-source.html"}, "not an object",
                            {"url": "http://[::1", "source": "h"}, {"url": 5, "source": "h"}]
    batch = [ok[0], bad_location, malformed[0], ok[1], malformed[1], malformed[2], bad_retry, malformed[3], ok[2]]
    tasks.fetch_task(batch)

    handed = [ref for task in _queued(d, "process") for ref in (task if isinstance(task, list) else [task])]
    assert sorted(ref["url"] for ref in handed) == sorted(c["url"] for c in ok)
    assert all(d.redis.exists(ref["page_key"]) for ref in handed)
    dead = _dead(d)
    by_url = {x["url"]: x for x in dead}
    wrong = [x for x in dead if x["reason"] == "malformed_task"]
    assert len(wrong) == 4 and all(x["stage"] == "fetch" for x in wrong)
    payloads = [json.loads(x["payload"]) for x in wrong]
    assert {"url": f"{site.base}/no-source.html"} in payloads and {"item": "not an object"} in payloads
    assert {x["error"] for x in wrong} >= {"source missing", "not an object but str"}
    # the trails: every URL of the batch has its outcome
    for c in ok:
        assert [e["ev"] for e in read_trail(d.redis, d.keys, c["url"]).events] == ["fetch"]
    retried = [c["url"] for task in _queued(d, "fetch") for c in (task if isinstance(task, list) else [task])]
    for c in (bad_location, bad_retry):
        last = read_trail(d.redis, d.keys, c["url"]).events[-1]
        assert last["ev"] in ("dead", "skipped", "retry") and last["reason"], last
        if last["ev"] == "dead":
            assert (by_url[c["url"]]["reason"], by_url[c["url"]]["error"]) == (last["reason"], last["error"])
            assert last["error"] and by_url[c["url"]]["stage"] == "fetch"
        if last["ev"] == "retry":
            assert c["url"] in retried
    assert read_trail(d.redis, d.keys, f"{site.base}/no-source.html").events[-1]["reason"] == "malformed_task"


def test_a_malformed_parked_member_is_dead_lettered_and_the_others_move_on(d: Deps, site: Site) -> None:
    """Unreadable members of the parked set, due first, are dead-lettered as `malformed_task` and removed;
    the good member behind them goes back to the fetch queue (on main the first one stopped every run)."""
    good = json.dumps({"candidate": {"url": f"{site.base}/ok-1.html", "source": "h"}, "force": False, "parks": 1})
    d.redis.zadd(d.keys.parked(), {b"{not json": 1, b'{"force": false}': 2, b'{"candidate": []}': 3,
                                   b"\xff\xfe": 4, good: 5})
    assert tasks.unpark_task() == 5
    assert d.redis.zcard(d.keys.parked()) == 0
    assert _queued(d, "fetch") == [{"url": f"{site.base}/ok-1.html", "source": "h"}]
    dead = _dead(d)
    assert [x["reason"] for x in dead] == ["malformed_task"] * 4
    assert json.loads(dead[0]["payload"]) == {"parked": "{not json"}


def _fetched(d: Deps, site: Site, i: int = 1) -> PageRef:
    ref = fetch(Candidate(url=f"{site.base}/ok-{i}.html", source="h"), d, force=True)
    assert isinstance(ref, PageRef)
    return ref


def test_a_process_batch_dead_letters_items_that_are_no_page_refs(d: Deps, site: Site) -> None:
    """Items of a process batch that are no page refs are dead-lettered as `malformed_task`; the page beside
    them is published (on main the batch failed as a whole at the first one)."""
    ref = _fetched(d, site).to_json()
    tasks.process_task([{"url": ref["url"], "source": "h"}, ref, 7, {**ref, "page_key": 5}])
    assert d.redis.xlen(d.keys.items_stream) == 1
    dead = _dead(d)
    assert [(x["stage"], x["reason"]) for x in dead] == [("process", "malformed_task")] * 3
    assert [x["error"] for x in dead] == ["final_url missing", "not an object but int",
                                          "page_key is not a non-empty string: 5"]


def test_a_page_that_expired_unprocessed_is_fetched_again_then_given_up(d: Deps, site: Site) -> None:
    """A page whose stored bytes are gone when process reads it (expired: the key is deleted here) and
    whose URL has no outcome since that fetch is fetched again, recorded in its trail; after
    MAX_REFETCHES such refetches the URL is dead-lettered. A page an earlier delivery processed
    stays `skipped: page_gone` and is not fetched again."""
    url = f"{site.base}/ok-1.html"
    for n in range(1, MAX_REFETCHES + 1):
        ref = _fetched(d, site)
        d.redis.delete(ref.page_key)
        tasks.process_task(ref.to_json())
        queued = _queued(d, "fetch")
        assert len(queued) == n and queued[0] == {"url": url, "source": "h", "published": None}
        last = read_trail(d.redis, d.keys, url).events[-1]
        assert (last["ev"], last["n"]) == ("refetch", n)
    ref = _fetched(d, site)
    d.redis.delete(ref.page_key)
    tasks.process_task(ref.to_json())
    assert len(_queued(d, "fetch")) == MAX_REFETCHES
    (dead,) = _dead(d)
    assert (dead["stage"], dead["reason"], dead["url"]) == ("process", "page_gone", url)
    assert d.redis.xlen(d.keys.items_stream) == 0

    # processed, then delivered again: its bytes were dropped on purpose
    done = _fetched(d, site, 2)
    tasks.process_task(done.to_json())
    tasks.process_task(done.to_json())
    assert len(_queued(d, "fetch")) == MAX_REFETCHES
    events = read_trail(d.redis, d.keys, done.url).events
    assert [e["ev"] for e in events][-2:] == ["published", "skipped"] and events[-1]["reason"] == "page_gone"
    assert len(events) <= TRAIL_MAX_EVENTS


def test_after_a_deadline_the_slow_hosts_other_urls_are_handed_on_and_the_rest_goes_on(d: Deps, site: Site) -> None:
    """A batch holds a URL whose headers drip past the (shipped) deadline, another URL of that host, and a
    page of another host: once the drip is cut off, the slow host's other URL goes to a fetch task of its
    own, not requested by this batch, and the other host's page is fetched straight after the deadline
    (not after a second one); the drip is retried on its own."""
    stop = threading.Event()
    drip = header_drip(stop)
    site.routes["/drip.html"] = drip
    site.routes["/also-slow.html"] = drip
    other_server = SiteServer()
    other = other_server.add("other", "127.0.0.42")
    other.routes["/robots.txt"] = (404, {}, "")
    other.routes["/story.html"] = (200, HTML, article_page(450, "Other Gazette"))
    slow, same_host = f"{site.base}/drip.html", f"{site.base}/also-slow.html"
    honest = f"{other.base}/story.html"
    started = time.time()
    try:
        tasks.fetch_task([{"url": slow, "source": "h"}, {"url": same_host, "source": "h"},
                          {"url": honest, "source": "h"}])
    finally:
        stop.set()
        other_server.stop()
    (request,) = other_server.requests("other", "/story.html")
    assert request.time - started < d.settings.fetch_timeout + 5
    assert site.hits["/drip.html"] == 1 and site.hits["/also-slow.html"] == 0
    queued = [task if isinstance(task, list) else [task] for task in _queued(d, "fetch")]
    assert [{"url": same_host, "source": "h"}] in queued
    assert any(c["url"] == slow for task in queued for c in task)
    handed = [ref["url"] for task in _queued(d, "process") for ref in (task if isinstance(task, list) else [task])]
    assert handed == [honest]
