"""What every `ledger:` URL parser shares: its error and its options."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit


class LedgerUrlError(ValueError):
    pass


def url_options(url: str, allowed: set[str]) -> dict[str, str]:
    options = {k: v[-1] for k, v in parse_qs(urlsplit(url).query).items()}
    unknown = set(options) - allowed
    if unknown:
        raise LedgerUrlError(f"ledger: unknown option(s) {', '.join(sorted(unknown))} in {url!r}")
    return options


def whole_number(options: dict[str, str], name: str, default: int, url: str, *, least: int = 1) -> int:
    text = options.get(name, str(default))
    if not text.isdigit() or int(text) < least:
        kind = "a positive integer" if least else "a whole number (0 or more)"
        raise LedgerUrlError(f"ledger: option {name} must be {kind} in {url!r}")
    return int(text)
