"""The agent SDK: exchange a workload identity at the Mint, keep the token fresh, call APIs through the mesh, and
delegate children offline; `SatGateClient` is an MCP client through SatGate. Needs httpx, and mcp for the MCP
client (`pip install 'satgate-envoy[sdk]'`); imports no server code."""

from satgate_sdk.client import (
    IdentityEnv,
    IdentityFile,
    SatGateAgent,
    SatGateAuth,
    SatGateError,
    delegate_offline,
)

_MCP_NAMES = frozenset({"SatGateClient", "BudgetExhausted", "NotAuthorized", "NotPermitted", "Unavailable"})

__all__ = [
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
]


def __getattr__(name: str) -> object:
    """The MCP client loads on first use: agents that only call HTTP APIs need no `mcp` package."""
    if name in _MCP_NAMES:
        from satgate_sdk import mcp_client  # noqa: PLC0415

        return getattr(mcp_client, name)
    raise AttributeError(f"module 'satgate_sdk' has no attribute {name!r}")
