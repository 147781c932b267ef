"""Agents import the SDK from the core package's name, lazily: importing the core never loads the SDK, httpx or any
server code, and the SDK itself loads no server code."""

import subprocess
import sys

import pytest

PROBE = """
import sys
import satgate, satgate.tokens.verify, satgate.ledger.url
edges = {"satgate_sdk", "httpx", "authz_server", "mint_server", "grpc", "aiohttp"}
loaded = sorted(m for m in sys.modules if m.split(".")[0] in edges)
assert not loaded, loaded
from satgate import SatGateAgent, delegate_offline
from satgate.sdk import IdentityFile
import satgate_sdk
assert SatGateAgent is satgate_sdk.SatGateAgent and IdentityFile is satgate_sdk.IdentityFile
assert not {"authz_server", "mint_server"} & {m.split(".")[0] for m in sys.modules}
assert "mcp" not in sys.modules  # the MCP client loads only when asked for
from satgate import SatGateClient, BudgetExhausted
assert SatGateClient is satgate_sdk.SatGateClient and issubclass(BudgetExhausted, satgate_sdk.SatGateError)
assert "mcp" in sys.modules and not {"authz_server", "mint_server"} & {m.split(".")[0] for m in sys.modules}
print("ok")
"""


def test_the_sdk_loads_on_first_use_only_and_without_servers():
    result = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


def test_an_unknown_name_is_an_attribute_error():
    import satgate

    with pytest.raises(AttributeError, match="NoSuchThing"):
        satgate.NoSuchThing  # noqa: B018
