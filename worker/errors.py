"""One exception tree with a single root, so callers can catch `WorkerError`.

Third-party errors (requests, redis, yaml) are translated at the module that
sees them, with ``raise ... from exc``.
"""

from __future__ import annotations


class WorkerError(Exception):
    """Root of every error wire raises on purpose."""


class ConfigError(WorkerError):
    """Invalid configuration; the message names the file and the field."""

    def __init__(self, path: str, where: str, message: str) -> None:
        self.path = path
        self.where = where
        self.message = message
        super().__init__(f"{path}: {where}: {message}" if where else f"{path}: {message}")


class FetchError(WorkerError):
    """A fetch that did not produce a usable page."""

    #: a short, bounded reason label used in metrics and dead letters
    reason: str = "fetch_error"

    def __init__(self, message: str, *, reason: str | None = None, status: int | None = None) -> None:
        super().__init__(message)
        if reason is not None:
            self.reason = reason
        self.status = status


class TransientFetchError(FetchError):
    """Worth retrying later: timeouts, connection resets, 5xx, 429."""

    reason = "transient"

    def __init__(
        self,
        message: str,
        *,
        reason: str | None = None,
        status: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message, reason=reason, status=status)
        self.retry_after = retry_after


class PermanentFetchError(FetchError):
    """Retrying will not help: 404, 410, refused by policy, too large, wrong type."""

    reason = "permanent"


class HostPaused(TransientFetchError):
    """The host is cooling down (robots.txt unavailable, Retry-After, circuit open)."""

    reason = "host_paused"


class ExtractError(WorkerError):
    """Extraction could not run (as opposed to a page that is not an article)."""


class PortInUse(WorkerError):
    """A port wire must listen on is taken; the message names the setting and, when known, the holder."""
