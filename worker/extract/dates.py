"""Date strings found in pages -> ISO-8601 UTC (``2021-07-06T10:00:00Z``).

Pure: a date without a time zone is taken as UTC (never as the local zone of
the machine running the worker), a date without a time as midnight.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

_ISO_PREFIX = re.compile(
    r"(\d{4})-?(\d{2})-?(\d{2})(?:[T ](\d{1,2}):?(\d{2})(?::?(\d{2})(?:[.,]\d+)?)?\s*"
    r"(Z|z|UTC|GMT|[+-]\d{2}(?::?\d{2})?)?)?"
)
_EARLIEST, _LATEST = 1990, 2100


def to_utc_iso(value: object) -> str | None:
    """Parse the date formats news pages use; None when it is not a plausible date."""
    if not isinstance(value, str):
        return None
    text = value.strip()[:64]
    if not text:
        return None
    parsed = _parse_iso(text) or _parse_rfc2822(text)
    if parsed is None or not _EARLIEST <= parsed.year <= _LATEST:
        return None
    return parsed.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse_iso(text: str) -> datetime | None:
    match = _ISO_PREFIX.match(text)
    if not match:
        return None
    year, month, day, hour, minute, second, zone = match.groups()
    try:
        naive = datetime(int(year), int(month), int(day), int(hour or 0), int(minute or 0), int(second or 0))
    except ValueError:
        return None
    if not zone or zone.upper() in ("Z", "UTC", "GMT"):
        return naive.replace(tzinfo=UTC)
    digits = zone[1:].replace(":", "")
    offset_min = int(digits[:2]) * 60 + int(digits[2:4] or 0)
    sign = 1 if zone[0] == "+" else -1
    try:
        return datetime.fromisoformat(
            f"{naive.isoformat()}{'+' if sign > 0 else '-'}{offset_min // 60:02d}:{offset_min % 60:02d}"
        )
    except ValueError:
        return None


def _parse_rfc2822(text: str) -> datetime | None:
    try:
        parsed = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if parsed is None:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
