"""Where this authz server's usage records go."""

from __future__ import annotations

from satgate.config import Config
from satgate.control_plane.url import sqlite_file
from satgate.usage import SqliteUsageSink, UsageSink


async def open_usage_sink(config: Config) -> UsageSink | None:
    """The shared control plane when it is PostgreSQL (`satgate usage` then sums every host), else this host's
    own file (authz.usage.path)."""
    if not config.authz.usage.enabled:
        return None
    if sqlite_file(config.control_plane) is None:
        from satgate.control_plane.usage import SqlUsageSink  # noqa: PLC0415 - SQLAlchemy only when used

        return await SqlUsageSink.open(config.control_plane)
    return SqliteUsageSink(config.authz.usage.path)
