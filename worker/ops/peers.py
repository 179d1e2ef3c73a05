"""Who a request comes from, for the limiters of `wire serve`.

The client is the peer address of the connection. Behind a reverse proxy
every request has the proxy's address, so the limiters would count every
client as one again; `WIRE_TRUSTED_PROXIES` (CIDRs) names the proxies whose
`X-Forwarded-For` is believed: the client is then the right-most address in
that header that is not itself a trusted proxy. Without the setting the
header is ignored, since any client can send it. An IPv6 client counts as
its /64, the block one subscriber usually gets.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

from ..settings import Network, parse_networks  # noqa: F401 - parse_networks is part of this API

Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def _address(text: str) -> Address | None:
    text = text.strip().strip("[]")
    try:
        addr = ipaddress.ip_address(text.split("%", 1)[0])
    except ValueError:
        return None
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        return addr.ipv4_mapped
    return addr


def _trusted(addr: Address, proxies: Sequence[Network]) -> bool:
    return any(addr.version == net.version and addr in net for net in proxies)


def client_of(peer: str, forwarded_for: str | None, proxies: Sequence[Network]) -> str:
    """The identity a limiter counts: the peer, or the client a trusted proxy forwarded for."""
    addr = _address(peer)
    if addr is None:
        return peer or "unknown"
    if proxies and forwarded_for and _trusted(addr, proxies):
        for hop in reversed(forwarded_for.split(",")):
            got = _address(hop)
            if got is None:
                break  # a garbled hop: keep the last address we could trust
            addr = got
            if not _trusted(addr, proxies):
                break
    if isinstance(addr, ipaddress.IPv6Address):
        return str(ipaddress.IPv6Network((addr, 64), strict=False))
    return str(addr)
