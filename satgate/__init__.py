"""SatGate core: tokens, caveats, keys, ledger and config shared by the authz and mint servers."""

__version__ = "0.1.0"
