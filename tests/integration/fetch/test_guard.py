"""The address guard end to end through the fetcher: real Redis, real loopback servers, a resolver the
test controls. WIRE_ALLOW_ADDRESSES makes 127.0.0.2 the "public" site; an "internal" server on 127.0.0.3
(same port) must never see a request, whatever the URL, redirect or DNS answer."""

from __future__ import annotations

import ipaddress
import shutil
import ssl
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import redis

from tests.support.dns import FakeDNS
from tests.support.helpers import test_settings
from tests.support.loopback import HTML, Resp, Site, SiteServer
from worker.errors import PermanentFetchError, TransientFetchError
from worker.fetch.fetcher import Fetcher
from worker.fetch.http import Limits, get
from worker.keys import Keys
from worker.models import Page

PUBLIC, INTERNAL = "127.0.0.2", "127.0.0.3"
SECRET = "<html><body><p>internal report: the secret</p></body></html>"
STORY = "<html><body><p>an honest story</p></body></html>"


@dataclass
class Net:
    server: SiteServer
    public: Site
    internal: Site
    port: int
    dns: FakeDNS

    def internal_requests(self) -> list[str]:
        return [r.path for r in self.server.requests("internal")]


@pytest.fixture(scope="module")
def servers() -> Iterator[SiteServer]:
    """The public and internal sites on one port (two addresses), and one on 127.0.0.1 for the peer check."""
    for _ in range(20):
        server = SiteServer()
        public = server.add("public", PUBLIC)
        try:
            server.add("internal", INTERNAL, port=public.server.server_address[1])  # type: ignore[union-attr]
        except OSError:  # that port is taken on the internal address: try another
            server.stop()
            continue
        server.add("loopback", "127.0.0.1")
        yield server
        server.stop()
        return
    raise AssertionError("no port free on both loopback addresses")


@pytest.fixture
def net(servers: SiteServer, monkeypatch: pytest.MonkeyPatch) -> Net:
    public, internal = servers.sites["public"], servers.sites["internal"]
    with servers._lock:
        servers.log.clear()
    for site in servers.sites.values():
        site.routes.clear()
    public.routes["/robots.txt"] = (200, {"Content-Type": "text/plain"}, "User-agent: *\nDisallow: /private/\n")
    public.routes["/story"] = (200, HTML, STORY)
    public.routes["/private/x"] = (200, HTML, STORY)
    internal.routes["/robots.txt"] = (200, {"Content-Type": "text/plain"}, "User-agent: *\nAllow: /\n")
    for path in ("/secret", "/story", "/internal/report", "/"):
        internal.routes[path] = (200, HTML, SECRET)
    servers.sites["loopback"].routes["/secret"] = (200, HTML, SECRET)
    dns = FakeDNS({"internal.test": [[INTERNAL]], "public.test": [[PUBLIC]], "mixed.test": [[PUBLIC, INTERNAL]],
                   "mapped.test": [["::ffff:127.0.0.3"]]})
    dns.install(monkeypatch)
    return Net(servers, public, internal, public.server.server_address[1], dns)  # type: ignore[union-attr]


def fetcher(r: redis.Redis, redis_url: str, prefix: str) -> Fetcher:
    return Fetcher(r, Keys.for_prefix(prefix), test_settings(
        redis_url, prefix, WIRE_ALLOW_PRIVATE_ADDRESSES="false", WIRE_ALLOW_ADDRESSES=f"{PUBLIC}/32",
        WIRE_DEFAULT_RATE=100))  # a host's pace, which users choose: dozens of URLs of one host, none paced out


LIMITS = Limits(allowed=(ipaddress.ip_network(f"{PUBLIC}/32"),))

# URLs that reach the internal server if the guard reads the host differently from the connection,
# or checks the name instead of the address. {p} is the shared port.
INTERNAL_URLS = [
    ("direct", "http://127.0.0.3:{p}/secret"),
    ("decimal", "http://2130706435:{p}/secret"),
    ("octal", "http://0177.0.0.3:{p}/secret"),
    ("hex", "http://0x7f.0.0.3:{p}/secret"),
    ("hex-int", "http://0x7f000003:{p}/secret"),
    ("short", "http://127.3:{p}/secret"),
    ("ipv6-mapped", "http://[::ffff:127.0.0.3]:{p}/secret"),
    ("ipv6-mapped-hex", "http://[::ffff:7f00:3]:{p}/secret"),
    ("ipv6-compatible", "http://[::127.0.0.3]:{p}/secret"),
    ("ipv6-nat64", "http://[64:ff9b::7f00:3]:{p}/secret"),
    ("dns-name", "http://internal.test:{p}/secret"),
    ("dns-name-mapped", "http://mapped.test:{p}/secret"),
    ("dns-one-of-two", "http://mixed.test:{p}/secret"),
    ("userinfo", "http://127.0.0.2:{p}@127.0.0.3:{p}/secret"),
    ("userinfo-name", "http://public.test@internal.test:{p}/secret"),
    ("backslash", "http://127.0.0.3:{p}\\@127.0.0.2:{p}/secret"),
    ("backslash-audit", "http://127.0.0.3:{p}\\@8.8.8.8/../../internal/report"),
]


@pytest.mark.parametrize("name, template", INTERNAL_URLS, ids=[c[0] for c in INTERNAL_URLS])
def test_internal_address_is_never_requested_directly(net: Net, r: redis.Redis, redis_url: str, prefix: str,
                                                      name: str, template: str) -> None:
    """A URL naming or spelling the internal address is refused before any request (robots.txt included)."""
    with pytest.raises(PermanentFetchError) as info:
        fetcher(r, redis_url, prefix).fetch(template.format(p=net.port))
    assert info.value.reason in ("private_address", "bad_url"), info.value
    assert net.internal_requests() == []


@pytest.mark.parametrize("name, template", INTERNAL_URLS, ids=[c[0] for c in INTERNAL_URLS])
def test_internal_address_is_never_requested_through_a_redirect(net: Net, r: redis.Redis, redis_url: str,
                                                                 prefix: str, name: str, template: str) -> None:
    """A public page redirecting to the internal address, in any spelling: the hop and its robots.txt are refused."""
    net.public.routes["/go"] = (302, {"Location": template.format(p=net.port)}, "")
    with pytest.raises(PermanentFetchError) as info:
        fetcher(r, redis_url, prefix).fetch(f"http://{PUBLIC}:{net.port}/go")
    assert info.value.reason in ("private_address", "bad_url"), info.value
    assert [q.path for q in net.server.requests("public")] == ["/robots.txt", "/go"]
    assert net.internal_requests() == []


def test_the_public_site_is_fetched(net: Net, r: redis.Redis, redis_url: str, prefix: str) -> None:
    """The allowed address is fetched as a public one would be, by address and by name."""
    f = fetcher(r, redis_url, prefix)
    page = f.fetch(f"http://{PUBLIC}:{net.port}/story")
    assert isinstance(page, Page) and page.content == STORY.encode()
    net.public.routes["/go"] = (302, {"Location": f"http://public.test:{net.port}/story"}, "")
    page = f.fetch(f"http://{PUBLIC}:{net.port}/go")
    assert isinstance(page, Page) and page.final_url == f"http://public.test:{net.port}/story"
    assert net.internal_requests() == []


@pytest.mark.parametrize("location", ["/a/../private/x", "/%70rivate/x", "/./private/./x", "/private/x#top"])
def test_robots_txt_applies_to_the_canonical_hop(net: Net, r: redis.Redis, redis_url: str, prefix: str,
                                                 location: str) -> None:
    """A redirect spelling a disallowed path another way is refused by robots.txt and never requested."""
    net.public.routes["/go"] = (301, {"Location": location}, "")
    with pytest.raises(PermanentFetchError) as info:
        fetcher(r, redis_url, prefix).fetch(f"http://{PUBLIC}:{net.port}/go")
    assert info.value.reason == "robots_denied"
    assert net.server.requests("public", "/private/x") == []


def test_dns_rebinding_finds_nothing_to_race(net: Net) -> None:
    """The name is resolved once per connection and the checked address is the one connected to.

    First answer public, every later one internal: the first GET is served by the public site after
    exactly one lookup; the next connection's lookup says internal and is refused.
    """
    net.dns.answers["rebind.test"] = [[PUBLIC], [INTERNAL]]
    net.public.routes["/story"] = (200, {**HTML, "Connection": "close"}, STORY)  # every request reconnects
    out: list[Any] = []

    def run() -> None:  # a thread of its own: a session with no pooled connection
        out.append(get(f"http://rebind.test:{net.port}/story", user_agent="t", limits=LIMITS).content)
        out.append(net.dns.asked.count("rebind.test"))
        try:
            get(f"http://rebind.test:{net.port}/story", user_agent="t", limits=LIMITS)
        except PermanentFetchError as exc:
            out.append(exc.reason)

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(30)
    assert out == [STORY.encode(), 1, "private_address"]
    assert len(net.server.requests("public", "/story")) == 1
    assert net.internal_requests() == []


def test_the_socket_peer_is_checked(net: Net) -> None:
    """An allowed address that lands elsewhere (0.0.0.0 connects to 127.0.0.1) is caught by the peer check."""
    port = net.server.sites["loopback"].server.server_address[1]  # type: ignore[union-attr]
    net.dns.answers["zero.test"] = [["0.0.0.0"]]
    limits = Limits(allowed=(ipaddress.ip_network("0.0.0.0/32"),))  # an operator's mistake
    for url in (f"http://0.0.0.0:{port}/secret", f"http://zero.test:{port}/secret"):
        with pytest.raises(PermanentFetchError) as info:
            get(url, user_agent="t", limits=limits)
        assert info.value.reason == "private_address" and "not to the checked address" in str(info.value)
    assert net.server.requests("loopback") == []


def _tls_files(tmp: Path) -> tuple[Path, Path, Path]:
    """A throwaway CA and a certificate it signs for the name public.test (openssl on the PATH)."""
    def run(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=tmp, check=True, capture_output=True)

    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
        "-subj", "/CN=wire test CA")
    run("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "site.key", "-out", "site.csr", "-subj", "/CN=public.test")
    (tmp / "san.ext").write_text("subjectAltName=DNS:public.test\n")
    run("x509", "-req", "-in", "site.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial", "-out",
        "site.pem", "-days", "2", "-extfile", "san.ext")
    return tmp / "ca.pem", tmp / "site.pem", tmp / "site.key"


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command")
def test_tls_is_verified_for_the_name_while_the_checked_address_is_dialled(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Connecting to the pinned address keeps TLS on the host name: SNI and Host say public.test, the
    certificate is verified for it, and a name the certificate does not cover fails."""
    ca, cert, key = _tls_files(tmp_path)
    seen: list[tuple[str | None, str | None]] = []
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    sni: list[str | None] = []
    context.sni_callback = lambda sock, name, ctx: sni.append(name)  # type: ignore[assignment,misc,return-value]

    def story(count: int, req: dict[str, str]) -> Resp:
        seen.append((sni[-1] if sni else None, req.get("Host")))
        return Resp(200, {"Content-Type": "text/html"}, STORY)

    server = SiteServer()
    site = server.add("public", PUBLIC, tls=context)
    site.routes["/story"] = story
    port = site.server.server_address[1]  # type: ignore[union-attr]
    FakeDNS({"public.test": [[PUBLIC]], "other.test": [[PUBLIC]]}).install(monkeypatch)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(ca))  # read when a session is made: each fetch in a new thread
    out: list[Any] = []

    def fetch(url: str) -> None:
        try:
            out.append(get(url, user_agent="t", limits=LIMITS).content)
        except TransientFetchError as exc:
            out.append(exc.reason)

    try:
        for url in (f"https://public.test:{port}/story", f"https://other.test:{port}/story"):
            thread = threading.Thread(target=fetch, args=(url,))
            thread.start()
            thread.join(30)
    finally:
        server.stop()
    assert out == [STORY.encode(), "connection"]  # other.test: the certificate does not cover the name
    assert seen == [("public.test", f"public.test:{port}")]
