"""Where this authz server's usage records go."""

from __future__ import annotations

from satgate.config import Config
from satgate.usage import UsageSink


async def open_usage_sink(config: Config) -> UsageSink | None:
    """None when this server records no usage (authz.usage.enabled: false)."""
    if not config.authz.usage.enabled:
        return None
    from satgate.control_plane.usage import open_usage_sink as opened  # noqa: PLC0415 - SQLAlchemy when used

    return await opened(config.control_plane, config.authz.usage.path)
