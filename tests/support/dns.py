"""A resolver a test controls: names it makes up get the answers it sets (DNS rebinding included)."""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass, field
from typing import Any

import pytest


@dataclass
class FakeDNS:
    """Answers for the names a test makes up; every other name goes to the system resolver.

    A name's answers are a list of address lists: each lookup takes the next
    one, the last one repeats (a DNS rebinding attack is [[public], [internal]]).
    """

    answers: dict[str, list[list[str]]] = field(default_factory=dict)
    asked: list[str] = field(default_factory=list)

    def install(self, monkeypatch: pytest.MonkeyPatch) -> None:
        real = socket.getaddrinfo

        def getaddrinfo(host: Any, port: Any, family: int = 0, type: int = 0, proto: int = 0,  # noqa: A002
                        flags: int = 0) -> list[Any]:
            name = host.decode() if isinstance(host, bytes) else host
            if name not in self.answers:
                return real(host, port, family, type, proto, flags)
            self.asked.append(name)
            queue = self.answers[name]
            addrs = queue.pop(0) if len(queue) > 1 else queue[0]
            out = []
            for a in addrs:
                if ipaddress.ip_address(a).version == 6:
                    out.append((socket.AF_INET6, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (a, int(port or 0), 0, 0)))
                else:
                    out.append((socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (a, int(port or 0))))
            return out

        monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
