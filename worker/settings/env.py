"""Every `WIRE_*` environment variable (12-factor) -> `Settings`, and the parsers of their values.

Read once, at an entrypoint, into a frozen value; nothing here runs at import
time. An invalid value is a ConfigError naming the variable.
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..errors import ConfigError
from ..keys import DEDUP_WINDOW, Keys

DEFAULT_USER_AGENT = "wire/0.1 (+https://github.com/wire-news/wire; news ingestion bot)"
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


MALLOC_MODES = ("auto", "jemalloc", "system")  # WIRE_MALLOC: the allocator `wire run` starts processes on


def parse_malloc_mode(raw: str | None) -> str:
    """`WIRE_MALLOC` as one of MALLOC_MODES (case-insensitive, `auto` when unset); ConfigError naming it otherwise."""
    mode = (raw or "auto").strip().lower()
    if mode not in MALLOC_MODES:
        raise ConfigError("environment", "WIRE_MALLOC",
                          f"expected one of {', '.join(MALLOC_MODES)}, got {mode!r}")
    return mode


def parse_duration(text: str | int | float) -> float:
    """`"30s"`, `"5m"`, `"1h"`, `"2d"` or a number of seconds -> seconds."""
    if isinstance(text, bool):
        raise ValueError(f"not a duration: {text!r}")
    if isinstance(text, int | float):
        if text <= 0:
            raise ValueError(f"must be positive, got {text!r}")
        return float(text)
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*", str(text))
    if not m:
        raise ValueError(f'not a duration: {text!r} (use e.g. "30s", "5m", "1h")')
    value = float(m.group(1)) * {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, None: 1}[m.group(2)]
    if value <= 0:
        raise ValueError(f"must be positive, got {text!r}")
    return value


@dataclass(frozen=True)
class Settings:
    redis_url: str | None = None  # None: `wire run` starts an embedded Redis
    broker_url: str | None = None  # defaults to redis_url
    sources_path: str = "config/sources.yaml"
    log_format: str | None = None  # json | console | None (console on a TTY, else json)
    log_level: str = "INFO"
    admin_token: str | None = None
    trusted_proxies: str | None = None  # CIDRs whose X-Forwarded-For the limiters believe (worker.peers)
    metrics_port: int = 9108
    metrics_host: str = "0.0.0.0"
    user_agent: str = DEFAULT_USER_AGENT
    allow_private_addresses: bool = False
    allow_addresses: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()  # networks fetched from besides public addresses
    http_proxy: str | None = None  # the only proxy wire uses; proxy variables are ignored
    key_prefix: str = "wire"
    items_stream: str | None = None  # default f"{key_prefix}:items"
    items_maxlen: int = 100_000
    data_dir: str = "data"
    dedup_window: float = DEDUP_WINDOW
    max_body_bytes: int = 5 * 1024 * 1024
    fetch_timeout: float = 20.0  # total deadline per fetch
    connect_timeout: float = 5.0
    default_rate: float = 1.0  # requests per second per host
    max_attempts: int = 3  # deliveries of one task before it is dead-lettered
    task_time_limit: int = 120  # hard limit, seconds
    visibility_timeout: int = 1800  # > every task's hard limit and every countdown we use
    fetch_concurrency: int = 8
    process_concurrency: int = 2
    fetch_batch: int = 16  # candidates per fetch task (a Celery task per page costs more than its fetch)
    process_batch: int = 8  # pages per process task
    health_window: float = 300.0
    bot_wall_limit: int = 5  # challenge pages in a row from one host that pause it
    bot_wall_pause: float = 600.0  # first pause of that host, seconds; doubles on each further trip
    task_events: bool = True  # Celery task events, for Flower and celery-exporter (wire's /metrics needs none)
    malloc: str = "auto"  # the allocator `wire run` starts its processes on (worker.ops.malloc)

    @property
    def soft_time_limit(self) -> int:
        """Celery's soft limit: the task gets SoftTimeLimitExceeded with time left to record why."""
        return max(1, int(self.task_time_limit * 0.85))

    @property
    def max_countdown(self) -> float:
        """Longest retry delay held as a broker countdown; longer waits are parked in Redis.

        A countdown is an ETA held unacked in worker memory: past the visibility
        timeout the Redis transport re-delivers it and it runs twice (kombu#337).
        """
        return min(60.0, (self.visibility_timeout - self.task_time_limit) / 2)

    @property
    def stream(self) -> str:
        return Keys.for_prefix(self.key_prefix, self.items_stream).items_stream

    @property
    def broker(self) -> str:
        url = self.broker_url or self.redis_url
        if not url:
            raise ConfigError("environment", "WIRE_REDIS_URL", "not set and no embedded Redis running")
        return url

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Read every `WIRE_*` variable; an invalid value names the variable."""
        env = os.environ if env is None else env

        def get(name: str) -> str | None:
            value = env.get(name)
            return value if value not in (None, "") else None

        def number(name: str, default: float, kind: type = float, minimum: float = 0) -> Any:
            raw = get(name)
            if raw is None:
                return default
            try:
                value = kind(raw)
            except ValueError:
                raise ConfigError("environment", name, f"expected a number, got {raw!r}") from None
            if value < minimum:
                raise ConfigError("environment", name, f"must be >= {minimum}, got {raw!r}")
            return value

        def flag(name: str, default: bool = False) -> bool:
            raw = (env.get(name) or "").strip().lower()
            if not raw:
                return default
            if raw in _TRUE:
                return True
            if raw in _FALSE:
                return False
            raise ConfigError("environment", name, f"expected true/false, got {raw!r}")

        log_format = get("WIRE_LOG_FORMAT")
        if log_format not in (None, "json", "console"):
            raise ConfigError("environment", "WIRE_LOG_FORMAT", f"expected json or console, got {log_format!r}")
        window = get("WIRE_DEDUP_WINDOW")
        try:
            dedup_window = parse_duration(window) if window else DEDUP_WINDOW
        except ValueError as exc:
            raise ConfigError("environment", "WIRE_DEDUP_WINDOW", str(exc)) from None
        _check_url("WIRE_REDIS_URL", get("WIRE_REDIS_URL"), ("redis", "rediss", "unix"))
        _check_url("WIRE_BROKER_URL", get("WIRE_BROKER_URL"), None)
        malloc_mode = parse_malloc_mode(get("WIRE_MALLOC"))
        prefix = get("WIRE_KEY_PREFIX") or "wire"
        if not re.fullmatch(r"[A-Za-z0-9_.:-]+", prefix):
            raise ConfigError("environment", "WIRE_KEY_PREFIX", f"invalid characters in {prefix!r}")
        try:
            allow_addresses = parse_networks(get("WIRE_ALLOW_ADDRESSES") or "")
        except ValueError as exc:
            raise ConfigError("environment", "WIRE_ALLOW_ADDRESSES",
                              f"{exc}; expected comma-separated CIDRs like 10.20.0.0/16") from None
        http_proxy = get("WIRE_HTTP_PROXY")
        if http_proxy is not None:
            http_proxy = _proxy_url(http_proxy)
        settings = cls(
            redis_url=get("WIRE_REDIS_URL"),
            broker_url=get("WIRE_BROKER_URL"),
            sources_path=get("WIRE_SOURCES") or "config/sources.yaml",
            log_format=log_format,
            log_level=(get("WIRE_LOG_LEVEL") or "INFO").upper(),
            admin_token=get("WIRE_ADMIN_TOKEN"),
            trusted_proxies=_networks(get("WIRE_TRUSTED_PROXIES")),
            metrics_port=number("WIRE_METRICS_PORT", 9108, int, 0),
            metrics_host=get("WIRE_METRICS_HOST") or "0.0.0.0",
            user_agent=get("WIRE_USER_AGENT") or DEFAULT_USER_AGENT,
            allow_private_addresses=flag("WIRE_ALLOW_PRIVATE_ADDRESSES"),
            allow_addresses=allow_addresses,
            http_proxy=http_proxy,
            key_prefix=prefix,
            items_stream=get("WIRE_ITEMS_STREAM"),
            items_maxlen=number("WIRE_ITEMS_MAXLEN", 100_000, int, 1),
            data_dir=get("WIRE_DATA_DIR") or "data",
            dedup_window=dedup_window,
            max_body_bytes=number("WIRE_MAX_BODY_BYTES", 5 * 1024 * 1024, int, 1024),
            fetch_timeout=number("WIRE_FETCH_TIMEOUT", 20.0, float, 0.1),
            default_rate=number("WIRE_DEFAULT_RATE", 1.0, float, 0.001),
            max_attempts=number("WIRE_MAX_ATTEMPTS", 3, int, 1),
            task_time_limit=number("WIRE_TASK_TIME_LIMIT", 120, int, 5),
            visibility_timeout=number("WIRE_VISIBILITY_TIMEOUT", 1800, int, 10),
            fetch_concurrency=number("WIRE_FETCH_CONCURRENCY", 8, int, 1),
            process_concurrency=number("WIRE_PROCESS_CONCURRENCY", 2, int, 1),
            fetch_batch=number("WIRE_FETCH_BATCH", 16, int, 1),
            process_batch=number("WIRE_PROCESS_BATCH", 8, int, 1),
            bot_wall_limit=number("WIRE_BOT_WALL_LIMIT", 5, int, 1),
            bot_wall_pause=number("WIRE_BOT_WALL_PAUSE", 600.0, float, 1),
            task_events=flag("WIRE_TASK_EVENTS", default=True),
            malloc=malloc_mode,
        )
        if settings.visibility_timeout < settings.task_time_limit + 10:
            raise ConfigError("environment", "WIRE_VISIBILITY_TIMEOUT",
                              f"must exceed WIRE_TASK_TIME_LIMIT ({settings.task_time_limit}s) by at least 10s, "
                              "or running tasks are re-delivered and run twice")
        return settings


def _check_url(name: str, url: str | None, schemes: tuple[str, ...] | None) -> None:
    """A URL without a scheme (`localhost:6379`) is one clear error naming the variable.

    The value is not echoed: it may carry a password.
    """
    if url is None:
        return
    scheme, sep, _ = url.partition("://")
    if not sep or not re.fullmatch(r"[A-Za-z][A-Za-z0-9+.-]*", scheme):
        raise ConfigError("environment", name, "expected a URL with a scheme, e.g. redis://localhost:6379/0")
    if schemes is not None and scheme.lower() not in schemes:
        raise ConfigError("environment", name, f"expected a {', '.join(s + '://' for s in schemes)} URL, "
                                               f"got a {scheme}:// URL")


MIN_ADMIN_TOKEN_LENGTH = 32
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(text: str | None) -> tuple[Network, ...]:
    """`"10.20.0.0/16, 192.168.7.12"` -> networks; ValueError naming the entry that is not a CIDR."""
    out = []
    for part in (text or "").split(","):
        entry = part.strip()
        if not entry:
            continue
        try:
            out.append(ipaddress.ip_network(entry, strict=True))
        except ValueError as exc:
            raise ValueError(f"{entry!r} is not an address or CIDR network ({exc})") from None
    return tuple(out)


def _networks(text: str | None) -> str | None:
    try:
        parse_networks(text)
    except ValueError as exc:
        raise ConfigError("environment", "WIRE_TRUSTED_PROXIES", str(exc)) from None
    return text


def require_strong_admin_token(token: str | None) -> None:
    """What serves the console and the API (`wire serve`, `wire run`) refuses a guessable admin token.

    Unset is allowed: the API and the console's actions are then off.
    """
    if token is not None and len(token) < MIN_ADMIN_TOKEN_LENGTH:
        raise ConfigError("environment", "WIRE_ADMIN_TOKEN",
                          f"must be at least {MIN_ADMIN_TOKEN_LENGTH} characters, got {len(token)}; "
                          "make one with: python3 -c 'import secrets; print(secrets.token_urlsafe(32))'")


def _proxy_url(raw: str) -> str:
    """WIRE_HTTP_PROXY: an http(s) URL with a host (and a port, or the scheme's)."""
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(raw.strip())
        parts.port  # noqa: B018 - raises on a bad port
    except ValueError as exc:
        raise ConfigError("environment", "WIRE_HTTP_PROXY", f"not a URL: {exc}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError("environment", "WIRE_HTTP_PROXY",
                          "expected a proxy URL like http://proxy.internal:3128")
    return raw.strip()
