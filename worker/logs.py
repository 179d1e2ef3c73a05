"""structlog setup: JSON lines in containers, readable console lines on a TTY.

Configured once, at an entrypoint. Credentials in URLs (userinfo, secret
query values) are masked by a processor so they never reach a log line.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import MutableMapping
from typing import Any

import structlog

from .urls import redact_text


def mask_credentials(text: str) -> str:
    """Userinfo and secret-looking query values masked anywhere in a string (worker.urls.redact_text)."""
    return redact_text(text)


def _redact(_: Any, __: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    for key, value in event_dict.items():
        if isinstance(value, str) and ("@" in value or "=" in value):
            event_dict[key] = redact_text(value)
    return event_dict


def configure(log_format: str | None = None, level: str = "INFO") -> None:
    """`log_format` json|console; None picks console on a TTY and JSON otherwise."""
    if log_format is None:
        log_format = "console" if sys.stderr.isatty() else "json"
    renderer: Any = (
        structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
        if log_format == "console"
        else structlog.processors.JSONRenderer(sort_keys=True)
    )
    numeric = logging.getLevelName(level) if isinstance(logging.getLevelName(level), int) else logging.INFO
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            _redact,
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        # one write() per line: a non-interactive stderr is unbuffered, and `print` (PrintLogger)
        # writes the message and its newline separately, so a prefork sibling's line could land
        # in between (`{...}{...}`); line and newline in one write keep every line whole
        logger_factory=structlog.WriteLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=False,
    )
    # Celery, kombu and urllib3 log through stdlib logging; keep them at WARNING
    # in the same stream so a container has one log.
    logging.basicConfig(stream=sys.stderr, level=max(numeric, logging.WARNING),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")


def get_logger(name: str = "wire") -> Any:
    return structlog.get_logger(name)
