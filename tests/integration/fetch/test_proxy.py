"""Proxies: the environment's are ignored; WIRE_HTTP_PROXY is used, and the guard decides each target
before the proxy is asked (a loopback server plays the proxy and records what it was asked for)."""

from __future__ import annotations

import ipaddress
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.support.dns import FakeDNS
from tests.support.loopback import HTML, Site, SiteServer
from worker.errors import PermanentFetchError
from worker.fetch.http import Limits, get
from worker.settings import Settings

PUBLIC = "127.0.0.2"
STORY = "<html><body><p>an honest story</p></body></html>"
METADATA = "http://169.254.169.254/latest/meta-data/"
PROXY_VARIABLES = ("http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY",
                   "no_proxy", "NO_PROXY")


@pytest.fixture
def sites(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[SiteServer, Site, Site]]:
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    FakeDNS({"internal.test": [["127.0.0.3"]]}).install(monkeypatch)
    server = SiteServer()
    site = server.add("site", PUBLIC)
    site.routes["/story"] = (200, HTML, STORY)
    proxy = server.add("proxy", "127.0.0.9")
    yield server, site, proxy
    server.stop()


def in_thread(call: Callable[[], Any]) -> Any:
    """Run `call` in a new thread (a new session): its result, or the exception it raised."""
    out: list[Any] = []

    def run() -> None:
        try:
            out.append(call())
        except Exception as exc:  # handed to the test to assert on
            out.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(30)
    return out[0]


def limits(proxy: str | None) -> Limits:
    return Limits(allowed=(ipaddress.ip_network(f"{PUBLIC}/32"),), proxy=proxy)


def test_wire_http_proxy_carries_allowed_requests(sites: tuple[SiteServer, Site, Site]) -> None:
    """WIRE_HTTP_PROXY set: a permitted target is asked of the proxy (absolute URI), not of the site."""
    server, site, proxy = sites
    proxy.routes[site.base + "/story"] = (200, HTML, "<html><body><p>via proxy</p></body></html>")
    settings = Settings.from_env({"WIRE_HTTP_PROXY": proxy.base, "WIRE_ALLOW_ADDRESSES": f"{PUBLIC}/32"})
    resp = in_thread(lambda: get(site.base + "/story", user_agent="t", limits=Limits.from_settings(settings)))
    assert b"via proxy" in resp.content
    assert [q.path for q in server.requests("proxy")] == [site.base + "/story"]
    assert server.requests("site") == []


@pytest.mark.parametrize("target", [METADATA, "http://internal.test:8080/secret", "http://[::ffff:a9fe:a9fe]/",
                                    "http://2852039166/latest/meta-data/"])
def test_the_proxy_is_never_asked_for_a_refused_target(sites: tuple[SiteServer, Site, Site], target: str) -> None:
    """Through WIRE_HTTP_PROXY, a target resolving to a refused address is refused before the proxy is asked."""
    server, _, proxy = sites
    got = in_thread(lambda: get(target, user_agent="t", limits=limits(proxy.base)))
    assert isinstance(got, PermanentFetchError) and got.reason == "private_address", got
    assert server.requests("proxy") == []


@pytest.mark.parametrize("location", [METADATA, "http://169.254.169.254\\@8.8.8.8/latest/meta-data/",
                                      "http://internal.test/secret"])
def test_the_proxy_is_never_asked_for_a_refused_redirect(sites: tuple[SiteServer, Site, Site],
                                                         location: str) -> None:
    """A redirect (through the proxy) to a refused target ends the fetch; the proxy saw only the first request."""
    server, site, proxy = sites
    proxy.routes[site.base + "/go"] = (302, {"Location": location}, "")
    got = in_thread(lambda: get(site.base + "/go", user_agent="t", limits=limits(proxy.base)))
    assert isinstance(got, PermanentFetchError) and got.reason in ("private_address", "bad_url"), got
    assert [q.path for q in server.requests("proxy")] == [site.base + "/go"]


def test_proxy_variables_of_the_environment_are_ignored(sites: tuple[SiteServer, Site, Site],
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """HTTP_PROXY and friends are never used: a redirect to the metadata service is refused, not proxied."""
    server, site, proxy = sites
    for name in ("HTTP_PROXY", "http_proxy", "ALL_PROXY"):
        monkeypatch.setenv(name, proxy.base)
    site.routes["/go"] = (302, {"Location": "http://169.254.169.254\\@8.8.8.8/latest/meta-data/"}, "")
    proxy.routes[METADATA] = (200, HTML, "<html><body><p>iam credentials</p></body></html>")
    got = in_thread(lambda: get(site.base + "/go", user_agent="t", limits=limits(None)))
    assert isinstance(got, PermanentFetchError) and got.reason == "bad_url", got
    resp = in_thread(lambda: get(site.base + "/story", user_agent="t", limits=limits(None)))
    assert resp.content == STORY.encode()
    assert server.requests("proxy") == []
    assert [q.path for q in server.requests("site")] == ["/go", "/story"]
