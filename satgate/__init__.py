"""SatGate core: the domain — tokens, caveats, keys, ledger, routes, audit chain — shared by the authz server and the
Mint. Nothing here imports a server, the CLI, an HTTP client or dev code.

For agents, the SDK's names are also reachable from here (`from satgate import SatGateAgent`), loaded on first use
only: importing the core never imports the SDK or httpx."""

from typing import Any

__version__ = "0.1.0"
_SDK_NAMES = frozenset(
    {
        "BudgetExhausted",
        "IdentityEnv",
        "IdentityFile",
        "NotAuthorized",
        "NotPermitted",
        "SatGateAgent",
        "SatGateAuth",
        "SatGateClient",
        "SatGateError",
        "Unavailable",
        "delegate_offline",
    }
)


def __getattr__(name: str) -> Any:
    if name in _SDK_NAMES:
        import satgate_sdk  # noqa: PLC0415 - lazily: the core itself never needs it

        return getattr(satgate_sdk, name)
    raise AttributeError(f"module 'satgate' has no attribute {name!r}")
