"""`satgate.sdk` as earlier releases documented it: the agent SDK now lives in `satgate_sdk` (also reachable as
`from satgate import SatGateAgent`). Loaded on first use only."""

from typing import Any


def __getattr__(name: str) -> Any:
    import satgate_sdk  # noqa: PLC0415 - lazily: the core itself never needs it

    return getattr(satgate_sdk, name)
