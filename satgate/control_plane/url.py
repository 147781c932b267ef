"""`control_plane:` URLs from config (validated without loading SQLAlchemy: every command reads the config).

- `sqlite:///relative/path.db`, `sqlite:////absolute/path.db` — one host (the embedded default)
- `postgresql://user:password@host:port/database[?sslmode=require]` — Mint replicas and authz hosts share it;
  `sslmode` as libpq spells it: disable, allow, prefer, require, verify-ca, verify-full
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qs, urlsplit, urlunsplit

SSL_MODES = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")


class ControlPlaneUrlError(ValueError):
    pass


class ControlPlaneError(Exception):
    """The store cannot be used as it is (unreachable, or at another schema): the message is the one line a
    server refuses to start with, naming `control_plane` and the fix."""


def validate_control_plane_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme == "sqlite":
        if parts.netloc or not parts.path.startswith("/") or parts.path == "/" or parts.query:
            raise ControlPlaneUrlError(
                f"control_plane: {url!r} must look like sqlite:///relative.db or sqlite:////abs/path.db"
            )
        return url
    if parts.scheme in {"postgresql", "postgres"}:
        if not parts.hostname or parts.path in {"", "/"}:
            raise ControlPlaneUrlError(
                f"control_plane: {redacted(url)!r} must name a host and a database: postgresql://user@host:5432/db"
            )
        options = parse_qs(parts.query)
        unknown = set(options) - {"sslmode"}
        if unknown:
            raise ControlPlaneUrlError(f"control_plane: unknown option(s) {', '.join(sorted(unknown))}; only sslmode")
        mode = options.get("sslmode", ["prefer"])[-1]
        if mode not in SSL_MODES:
            raise ControlPlaneUrlError(f"control_plane: sslmode must be one of {', '.join(SSL_MODES)}, not {mode!r}")
        return url
    raise ControlPlaneUrlError(
        f"control_plane: unsupported URL {redacted(url)!r}; expected sqlite:///path.db or postgresql://host/db"
    )


def redacted(url: str) -> str:
    """The URL without its password, for messages and logs."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def sqlite_file(url: str) -> Path | None:
    parts = urlsplit(url)
    return Path(parts.path[1:]) if parts.scheme == "sqlite" else None
