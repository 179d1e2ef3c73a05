"""The address guard: which URLs a request may be made for and which addresses it may reach.

Two layers. `check_url` refuses, before anything is asked, a URL whose
authority two parsers could read differently (a backslash, userinfo, a
percent sign), so the host that robots.txt and pacing see is the host
urllib3 connects to; `next_hop` does the same for a redirect target and
canonicalises it. `AddressPolicy` decides each resolved address, and
`resolve_checked` is called by the connection itself (worker/http.py) with
the name it is about to connect to: the name is resolved once, every
address is checked, and only a checked address is connected to.
"""

from __future__ import annotations

import functools
import ipaddress
import re
import socket
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

import idna
from urllib3.exceptions import LocationParseError
from urllib3.util import parse_url
from urllib3.util.connection import allowed_gai_family

from ..errors import BadURL, PermanentFetchError, TransientFetchError
from ..urls import canonicalize, redact

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

# Ranges IANA lists as not globally reachable (or never to be connected to)
# that `is_global` accepts on some Python versions (3.11.7 calls 192.0.0.192,
# ::7f00:1, fec0::1 and 64:ff9b:1::1 global). Refused whatever the version.
NOT_GLOBAL: tuple[IPNetwork, ...] = tuple(ipaddress.ip_network(n) for n in (
    "0.0.0.0/8",  # "this network"; 0.0.0.0 connects to the local host
    "100.64.0.0/10",  # carrier-grade NAT; 100.100.100.200 is a cloud metadata service
    "192.0.0.0/24",  # IETF protocol assignments (192.0.0.192 and friends)
    "198.18.0.0/15",  # benchmarking
    "224.0.0.0/4",  # multicast
    "240.0.0.0/4",  # reserved, and the broadcast address
    "::/96",  # IPv4-compatible IPv6 (deprecated): ::7f00:1 is 127.0.0.1
    "64:ff9b:1::/48",  # local-use NAT64
    "2001::/23",  # IETF protocol assignments, Teredo (2001::/32) among them
    "2002::/16",  # 6to4: a relay forwards to whatever IPv4 address is embedded
    "fc00::/7",  # unique local
    "fe80::/10",  # link-local
    "fec0::/10",  # site-local (deprecated)
    "ff00::/8",  # multicast
))
NAT64 = ipaddress.ip_network("64:ff9b::/96")  # well-known NAT64 prefix: the last 32 bits are the IPv4 target

# A host part of ASCII letters, digits, dots and dashes (or an IPv6 literal) and a numeric port:
# every parser reads the same host and port from it.
_PLAIN_NETLOC = re.compile(r"(?:[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(?::[0-9]{1,5})?")
# Removed by WHATWG URL parsing anywhere in a URL (and by worker/urls.py); feeds wrap links.
_STRIP = str.maketrans("", "", "\t\r\n")


@dataclass(frozen=True)
class AddressPolicy:
    """Which addresses a request may connect to: public ones, plus `allowed` networks, or all."""

    allow_private: bool = False  # WIRE_ALLOW_PRIVATE_ADDRESSES: the blunt switch
    allowed: tuple[IPNetwork, ...] = ()  # WIRE_ALLOW_ADDRESSES

    def permits(self, addr: IPAddress) -> bool:
        if self.allow_private:
            return True
        if any(addr in net for net in self.allowed if net.version == addr.version):
            return True
        if isinstance(addr, ipaddress.IPv6Address):
            # an address that carries an IPv4 address reaches it: decide that one
            if addr.ipv4_mapped is not None:
                return self.permits(addr.ipv4_mapped)
            if addr in NAT64:
                return self.permits(ipaddress.IPv4Address(int(addr) & 0xFFFFFFFF))
        return is_public(addr)


@functools.lru_cache(maxsize=4096)  # ipaddress walks a dozen networks per question; hosts repeat
def is_public(addr: IPAddress) -> bool:
    """True only for a globally reachable unicast address (`is_global`, minus NOT_GLOBAL)."""
    if not addr.is_global or addr.is_multicast or addr.is_reserved or addr.is_unspecified:
        return False
    return not any(addr in net for net in NOT_GLOBAL if net.version == addr.version)


# -- URLs ----------------------------------------------------------------------


def check_url(url: str) -> str:
    """Return `url` if it may be requested as it is; raise PermanentFetchError(bad_url) if not.

    Refused: anything but http(s), no host, and an authority that the two
    parsers in play (urllib.parse here and in politeness, urllib3's
    `parse_url` in the connection) could read as two different hosts:
    a backslash, userinfo (`user@`), a percent sign, a host or port on
    which they disagree.
    """
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise PermanentFetchError(f"unparseable URL {redact(url)}: {exc}", reason="bad_url") from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise PermanentFetchError(f"refusing non-http URL {scheme}://", reason="bad_url")
    for char, what in (("\\", "a backslash"), ("@", "credentials (userinfo)"), ("%", "a percent sign")):
        if char in parts.netloc:
            raise PermanentFetchError(f"refusing URL with {what} in its host part: {redact(url)}",
                                      reason="bad_url")
    if _PLAIN_NETLOC.fullmatch(parts.netloc):
        return url  # nothing in it two parsers could read two ways: the common case, without parse_url's cost
    try:
        target = parse_url(url)
    except LocationParseError as exc:
        raise PermanentFetchError(f"unparseable URL {redact(url)}: {exc}", reason="bad_url") from None
    host = (target.host or "").strip("[]")
    if not host or not parts.hostname:
        raise PermanentFetchError(f"URL has no host: {redact(url)}", reason="bad_url")
    if host != _ascii_host(parts.hostname) or target.port != port:
        raise PermanentFetchError(f"URL whose host reads two ways ({host} / {parts.hostname}): {redact(url)}",
                                  reason="bad_url")
    return url


def next_hop(current: str, location: str) -> str:
    """The canonical URL a redirect from `current` to `location` goes to, checked as `check_url` does.

    The raw target is checked before canonicalising, because canonicalising
    drops userinfo and would hide a hop that tried to smuggle a second host.
    """
    try:
        joined = urljoin(current, location.strip().translate(_STRIP))
    except ValueError as exc:
        raise PermanentFetchError(f"unparseable redirect target {location[:200]!r}: {exc}",
                                  reason="bad_url") from None
    check_url(joined)
    try:
        hop = canonicalize(joined)
    except BadURL as exc:
        raise PermanentFetchError(f"bad redirect target {redact(joined)}: {exc}", reason="bad_url") from None
    return check_url(hop)


def _ascii_host(hostname: str) -> str:
    """The host as urllib3 sends it: lower-case, IDNA-encoded the way urllib3 encodes it."""
    if hostname.isascii():
        return hostname.lower()
    try:
        return idna.encode(hostname.lower(), strict=True, std3_rules=True).decode("ascii")
    except idna.IDNAError:
        return ""  # urllib3 refuses it too; never equal to its host


# -- addresses -----------------------------------------------------------------


def resolve(host: str, port: int) -> list[IPAddress]:
    """Every address `host` resolves to, in the resolver's order (the system resolver)."""
    try:
        infos = socket.getaddrinfo(host, port, allowed_gai_family(), socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise TransientFetchError(f"cannot resolve {host}: {exc}", reason="dns") from None
    out: list[IPAddress] = []
    for info in infos:
        addr = ipaddress.ip_address(str(info[4][0]).partition("%")[0])
        if addr not in out:
            out.append(addr)
    return out


def resolve_checked(host: str, port: int, policy: AddressPolicy) -> list[IPAddress]:
    """Resolve `host` once; every address must be permitted, or PermanentFetchError(private_address)."""
    addrs = resolve(host, port)
    for addr in addrs:
        if not policy.permits(addr):
            shown = host if _is_literal(host, addr) else f"{host} resolves to {addr}, which"
            raise PermanentFetchError(f"{shown} is a private or reserved address", reason="private_address")
    if not addrs:
        raise TransientFetchError(f"cannot resolve {host}: no address", reason="dns")
    return addrs


def _is_literal(host: str, addr: IPAddress) -> bool:
    try:
        return ipaddress.ip_address(host) == addr
    except ValueError:
        return False


def check_peer(sock: socket.socket, expected: IPAddress) -> None:
    """The socket's peer is the address that was checked (the kernel had the last word on where it went)."""
    peer = ipaddress.ip_address(str(sock.getpeername()[0]).partition("%")[0])
    if peer != expected:  # `expected` was permitted before the connect
        raise PermanentFetchError(f"connected to {peer}, not to the checked address {expected}",
                                  reason="private_address")


def is_public_address(host: str, allowed: tuple[IPNetwork, ...] = ()) -> bool:
    """False when any address `host` resolves to is neither public nor in `allowed`."""
    try:
        resolve_checked(host, 80, AddressPolicy(allowed=allowed))
    except PermanentFetchError:
        return False
    return True
