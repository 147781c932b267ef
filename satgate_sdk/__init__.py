"""The agent SDK: exchange a workload identity at the Mint, keep the token fresh, call APIs through the mesh, and
delegate children offline. Needs httpx (`pip install 'satgate-envoy[sdk]'`); imports no server code."""

from satgate_sdk.client import (
    IdentityEnv,
    IdentityFile,
    SatGateAgent,
    SatGateAuth,
    SatGateError,
    delegate_offline,
)

__all__ = ["IdentityEnv", "IdentityFile", "SatGateAgent", "SatGateAuth", "SatGateError", "delegate_offline"]
