"""The address guard's pure parts: which addresses are public, what WIRE_ALLOW_ADDRESSES adds, which URLs
are refused before anything is asked (no network, no Redis)."""

from __future__ import annotations

import ipaddress

import pytest

from worker.errors import ConfigError, PermanentFetchError
from worker.fetch.guard import AddressPolicy, check_url, next_hop
from worker.settings import Settings

REFUSED = [
    "100.100.100.200",  # a cloud metadata service in carrier-grade NAT space
    "100.64.0.1",
    "100.127.255.254",
    "169.254.169.254",  # the link-local metadata service
    "192.0.0.192",
    "192.0.0.8",
    "0.0.0.0",
    "0.1.2.3",
    "127.0.0.1",
    "127.0.0.3",
    "10.1.2.3",
    "172.16.0.1",
    "192.168.1.1",
    "198.18.0.1",
    "192.0.2.1",
    "224.0.0.1",
    "239.255.255.250",
    "240.0.0.1",
    "255.255.255.255",
    "::",
    "::1",
    "::ffff:127.0.0.1",  # IPv4-mapped loopback
    "::ffff:7f00:3",
    "::ffff:169.254.169.254",
    "::ffff:100.100.100.200",
    "::7f00:1",  # IPv4-compatible loopback
    "::127.0.0.3",
    "64:ff9b::7f00:1",  # NAT64 of 127.0.0.1
    "64:ff9b::a9fe:a9fe",  # NAT64 of 169.254.169.254
    "64:ff9b:1::1",  # local-use NAT64
    "2002::1",  # 6to4
    "2002:7f00:1::1",  # 6to4 of 127.0.0.1
    "2002:808:808::1",  # 6to4 of a public address: a relay still decides where it goes
    "2001::1",  # Teredo
    "2001:0:4136:e378:8000:63bf:3fff:fdd2",
    "2001:db8::1",
    "fd00::1",
    "fd00:ec2::254",  # the IPv6 metadata service
    "fc00::1",
    "fe80::1",
    "fec0::1",
    "ff02::1",
    "ff0e::1",
    "100::1",
]

PUBLIC = ["8.8.8.8", "93.184.216.34", "1.1.1.1", "2606:4700::1", "2001:4860:4860::8888",
          "::ffff:8.8.8.8", "64:ff9b::808:808"]


@pytest.mark.parametrize("address", REFUSED)
def test_non_global_addresses_are_refused(address: str) -> None:
    """Every special-purpose range is refused, embedded IPv4 (mapped, compatible, NAT64, 6to4, Teredo) too."""
    assert not AddressPolicy().permits(ipaddress.ip_address(address))


@pytest.mark.parametrize("address", PUBLIC)
def test_public_addresses_are_allowed(address: str) -> None:
    """A globally reachable unicast address passes, also as IPv4-mapped or NAT64 of a public IPv4 address."""
    assert AddressPolicy().permits(ipaddress.ip_address(address))


def test_allowed_networks_add_to_the_public_ones_and_nothing_else() -> None:
    """WIRE_ALLOW_ADDRESSES permits its networks (IPv4-mapped forms too); every other private address stays refused."""
    policy = AddressPolicy(allowed=Settings.from_env({"WIRE_ALLOW_ADDRESSES": "10.20.0.0/16, 127.0.0.2"}).allow_addresses)
    permits = {a: policy.permits(ipaddress.ip_address(a)) for a in (
        "10.20.0.1", "10.20.255.254", "127.0.0.2", "::ffff:127.0.0.2", "::ffff:10.20.3.4", "8.8.8.8",
        "10.21.0.1", "127.0.0.3", "127.0.0.1", "169.254.169.254", "100.100.100.200", "::1", "::ffff:127.0.0.3")}
    assert [a for a, ok in permits.items() if ok] == [
        "10.20.0.1", "10.20.255.254", "127.0.0.2", "::ffff:127.0.0.2", "::ffff:10.20.3.4", "8.8.8.8"]
    assert AddressPolicy(allow_private=True).permits(ipaddress.ip_address("169.254.169.254"))


@pytest.mark.parametrize("value, says", [
    ("10.20.0.0/33", "'10.20.0.0/33' is not an address or CIDR network"),
    ("10.20.0.1/16", "'10.20.0.1/16' is not an address or CIDR network (10.20.0.1/16 has host bits set)"),
    ("10.0.0.0/8, intranet", "'intranet' is not an address or CIDR network"),
])
def test_an_invalid_allow_list_names_the_variable(value: str, says: str) -> None:
    """WIRE_ALLOW_ADDRESSES that is not a list of CIDRs is a config error naming the variable and the entry."""
    with pytest.raises(ConfigError) as info:
        Settings.from_env({"WIRE_ALLOW_ADDRESSES": value})
    assert info.value.where == "WIRE_ALLOW_ADDRESSES" and says in info.value.message
    assert Settings.from_env({}).allow_addresses == ()


@pytest.mark.parametrize("value", ["proxy.internal:3128", "socks5://proxy:1080", "http://", "http://p:99999"])
def test_an_invalid_proxy_names_the_variable(value: str) -> None:
    """WIRE_HTTP_PROXY must be an http(s) URL with a host: anything else names the variable."""
    with pytest.raises(ConfigError) as info:
        Settings.from_env({"WIRE_HTTP_PROXY": value})
    assert info.value.where == "WIRE_HTTP_PROXY"
    assert Settings.from_env({"WIRE_HTTP_PROXY": "http://proxy.internal:3128"}).http_proxy == "http://proxy.internal:3128"


@pytest.mark.parametrize("url", [
    "http://127.0.0.1:8000\\@8.8.8.8/../../internal/report",  # urllib3 connects to 127.0.0.1, urlsplit says 8.8.8.8
    "http://example.com\\.evil.example/",
    "http://user:pw@example.com/",
    "http://example.com@127.0.0.1/",
    "http://127.0.0.1:80@example.com/",
    "http://127%2e0%2e0%2e1/",
    "ftp://example.com/",
    "file:///etc/passwd",
    "gopher://127.0.0.1:6379/_INFO",
    "http:///path",
    "http://example.com:99999/",
])
def test_urls_read_two_ways_are_refused(url: str) -> None:
    """A URL whose host two parsers could read differently, or not http(s), is refused as bad_url."""
    with pytest.raises(PermanentFetchError) as info:
        check_url(url)
    assert info.value.reason == "bad_url"
    assert "pw" not in str(info.value)  # credentials are not repeated in the error


@pytest.mark.parametrize("url", ["http://example.com/a?b=1#c", "https://EXAMPLE.com:8443/x", "http://[2606:4700::1]/",
                                 "http://bücher.example/", "http://example.com/path\\with\\backslashes",
                                 "http://example.com/?next=http://a@b/"])
def test_ordinary_urls_pass(url: str) -> None:
    """Ordinary URLs pass unchanged: IDN hosts, IPv6 literals, '@' or '\\' outside the host part."""
    assert check_url(url) == url


@pytest.mark.parametrize("location, hop", [
    ("/a/../private/x", "http://news.example/private/x"),
    ("/%70rivate/x", "http://news.example/private/x"),
    ("HTTP://News.Example:80/b/./c#frag", "http://news.example/b/c"),
    ("//other.example/p?utm_source=x&b=2&a=1", "http://other.example/p?a=1&b=2"),
    ("  /x\t/y\n", "http://news.example/x/y"),
])
def test_redirect_hops_are_canonical(location: str, hop: str) -> None:
    """A redirect target is canonicalised before robots.txt, pacing or the request see it."""
    assert next_hop("http://news.example/story", location) == hop


@pytest.mark.parametrize("location", [
    "http://127.0.0.1:8000\\@8.8.8.8/../../internal/report",
    "http://attacker@127.0.0.1/",
    "https://a:b@news.example/",
    "http://[::1",
    "javascript:alert(1)",
    "file:///etc/passwd",
    "http://127.0.0.1:8000%5C@8.8.8.8/",
])
def test_redirect_hops_that_hide_a_host_are_refused(location: str) -> None:
    """Backslashes, userinfo, unparseable or non-http targets end the fetch as bad_url."""
    with pytest.raises(PermanentFetchError) as info:
        next_hop("http://news.example/story", location)
    assert info.value.reason == "bad_url"
