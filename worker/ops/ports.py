"""A port wire must listen on, checked before anything starts: one line naming the setting and the holder."""

from __future__ import annotations

import errno
import socket

from ..errors import PortInUse


def holder(port: int) -> str | None:
    """Which process listens on TCP `port` ("pid 123 (python -m worker.ops.cli serve)"), when this user can see it."""
    try:
        import psutil

        listeners = [c for c in psutil.net_connections("tcp") if c.status == psutil.CONN_LISTEN
                     and c.laddr and c.laddr.port == port]
        for conn in listeners:
            if conn.pid is None:
                continue
            try:
                command = " ".join(psutil.Process(conn.pid).cmdline()) or psutil.Process(conn.pid).name()
            except psutil.Error:
                command = ""
            command = " ".join(command.split())[:120]  # one line, whatever the command line holds
            return f"pid {conn.pid} ({command})" if command else f"pid {conn.pid}"
    except Exception:  # psutil missing, or /proc unreadable: the message simply names no holder
        return None
    return None


def in_use(host: str, port: int, setting: str) -> str:
    """The one line that says `setting`'s port is taken, and by whom when this user can see it."""
    who = holder(port)
    by = f"by {who}" if who else "by a process this user cannot see"
    return f"{setting}: port {port} on {host} is already in use {by}"


def ensure_free(host: str, port: int, setting: str) -> None:
    """Raise PortInUse (naming `setting`) when an HTTP server could not bind `host:port` now."""
    if port != 0 and not is_free(host, port):
        raise PortInUse(in_use(host, port, setting))


def is_free(host: str, port: int) -> bool:
    """Whether a server could bind `host:port` now (other errors than "in use" are raised)."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as http.server and redis-server bind
        try:
            sock.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return False
            raise
    return True
