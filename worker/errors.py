"""Every exception wire raises on purpose, in one tree with a single root.

    WorkerError                   root: catch it to catch anything wire raises on purpose
    ├── ConfigError               invalid configuration; the message names the file and the field
    │   └── SourcesInvalid        every error found in one sources file
    ├── FetchError                a fetch that did not produce a usable page
    │   ├── TransientFetchError   worth retrying later: timeouts, resets, 5xx, 429
    │   │   └── HostPaused        the host is cooling down (robots.txt unavailable, Retry-After, bot walls)
    │   └── PermanentFetchError   retrying will not help: 404, 410, robots.txt, too large, not HTML
    ├── DiscoverError             a feed, sitemap or listing page that cannot be read
    ├── DedupError                dedup could not record a decision (Redis failed, endless conflicts)
    ├── ReingestError             a re-ingest request that cannot be carried out
    ├── BadURL                    not an http(s) URL wire fetches (also a ValueError)
    ├── PortInUse                 a port wire must listen on is taken (names the setting and the holder)
    └── RunInProgress             another `wire run` holds the data folder (names its pid)

Third-party errors (requests, redis, yaml, lxml) are translated where they
are seen, with ``raise ... from exc``; a Redis connection error that reaches
a task unchanged is the one left as it is, so the task is requeued
(`queue.delivery.redis_down`). `tests/unit/test_errors.py` fails when a
class deriving from an exception is defined elsewhere in `worker/`, when a
raised wire exception is not in this tree, or when the drawing above and
the classes below disagree.
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


class SourcesInvalid(ConfigError):
    """Every error found in one sources file."""

    def __init__(self, errors: list[ConfigError]) -> None:
        self.errors = errors
        first = errors[0]
        super().__init__(first.path, first.where, first.message)

    def __str__(self) -> str:
        return "\n".join(str(e) for e in self.errors)


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


class DiscoverError(WorkerError):
    """A feed, sitemap or page that cannot be read (malformed, hostile or too large)."""


class DedupError(WorkerError):
    """Dedup could not record a decision (Redis unreachable, or endless conflicts)."""


class ReingestError(WorkerError):
    """A re-ingest request that cannot be carried out (unknown source, bad URL...)."""


class BadURL(WorkerError, ValueError):
    """Not an http(s) URL we are willing to fetch (scheme, length, host)."""


class PortInUse(WorkerError):
    """A port wire must listen on is taken; the message names the setting and, when known, the holder."""


class RunInProgress(WorkerError):
    """Another live `wire run` holds the data folder (its run file); the message names its pid and console."""
