"""Caveat grammar `<key> = <value>` (SPEC: Caveats), shared by every caveat unit."""

from __future__ import annotations

import re
from collections.abc import Callable

from satgate.timefmt import parse_utc

KEY_RE = re.compile(r"[a-z][a-z0-9_.]{0,63}")
MAX_VALUE_CHARS = 1024
# C0, DEL and C1 controls: a value must be safe to echo into a header or a log line.
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f-\x9f]")


class CaveatSyntaxError(ValueError):
    pass


def split_caveat(raw: bytes) -> tuple[str, str]:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CaveatSyntaxError("caveat is not UTF-8") from exc
    key, sep, value = text.partition(" = ")
    if not sep:
        raise CaveatSyntaxError("caveat is not '<key> = <value>'")
    if not KEY_RE.fullmatch(key):
        raise CaveatSyntaxError(f"caveat key {key[:64]!r} does not match [a-z][a-z0-9_.]{{0,63}}")
    check_value(value, key)
    return key, value


def check_value(value: str, key: str) -> None:
    if not value or len(value) > MAX_VALUE_CHARS:
        raise CaveatSyntaxError(f"caveat {key!r}: value must be 1..{MAX_VALUE_CHARS} characters")
    if value != value.strip():
        raise CaveatSyntaxError(f"caveat {key!r}: value has leading or trailing space")
    if _CONTROL_RE.search(value):
        raise CaveatSyntaxError(f"caveat {key!r}: value has control characters")


def format_caveat(key: str, value: str) -> bytes:
    """The inverse of split_caveat; refuses to produce a caveat the verifier would reject."""
    if not KEY_RE.fullmatch(key):
        raise CaveatSyntaxError(f"caveat key {key!r} does not match [a-z][a-z0-9_.]{{0,63}}")
    check_value(value, key)
    return f"{key} = {value}".encode()


def split_list(value: str, key: str) -> tuple[str, ...]:
    """Comma lists (`GET,POST`): items trimmed, none empty."""
    items = tuple(item.strip() for item in value.split(","))
    if any(not item for item in items):
        raise CaveatSyntaxError(f"caveat {key!r}: empty item in list {value!r}")
    return items


def split_valid_list(value: str, key: str, is_valid: Callable[[str], object], what: str) -> tuple[str, ...]:
    """A comma list whose every item passes `is_valid`; the error names the items that do not."""
    items = split_list(value, key)
    bad = [item for item in items if not is_valid(item)]
    if bad:
        raise CaveatSyntaxError(f"caveat {key!r}: {what}: {', '.join(bad)}")
    return items


def parse_instant(value: str, key: str) -> float:
    """An RFC 3339 UTC caveat value as epoch seconds."""
    try:
        return parse_utc(value)
    except ValueError as exc:
        raise CaveatSyntaxError(f"caveat {key!r}: {exc}") from exc
