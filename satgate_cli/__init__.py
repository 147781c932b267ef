"""The `satgate` command line (an edge: it stands on the servers and the core, nothing imports it)."""

from satgate_cli.app import cli, main

__all__ = ["cli", "main"]
