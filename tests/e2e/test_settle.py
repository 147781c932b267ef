"""Settling after the response, through real Envoy on both ext_authz transports: on a `settle: response_header`
route the check reserves the route's cost, the upstream says what the request really cost in `x-satgate-cost`
(which the client never sees), and Envoy's access-log stream settles each debit once — a lower cost refunds the
difference, a higher one charges up to what is left and records the overshoot, no header keeps the reservation,
an MCP tool server reporting its cost settles the tool's price, and an authz restart loses nothing Envoy sends
after it."""

import json
import sys
import time
from pathlib import Path

import httpx
import pytest

from satgate.keyring import load_keyring
from satgate.tokens.mint import mint
from satgate_dev.devstack import Stack, StackPorts

from .test_delivery_refunds import audit_records, claimed_entry, remaining, resend_twice, settles_to

pytestmark = pytest.mark.e2e
UPSTREAM = [sys.executable, str(Path(__file__).with_name("faulty_upstream.py")), "--port", "{port}"]
ROUTES = [
    {"match": {"path_prefix": "/metered/"}, "settings": {"settle": "response_header"}},
    {"match": {"path_prefix": "/mcp"}, "settings": {"mcp": "true", "pricing": "default", "settle": "response_header"}},
]


@pytest.fixture(scope="module")
def metered_stack(tmp_path_factory, transport):
    overrides = {"authz": {"routes": ROUTES}}
    state = tmp_path_factory.mktemp("metered")
    stack = Stack(state, StackPorts.free(), config_overrides=overrides, transport=transport, upstream_argv=UPSTREAM)
    with stack:
        yield stack


def test_the_upstreams_cost_settles_each_request(metered_stack):
    keyring = load_keyring(metered_stack.state_dir / "keyring.json")
    token = mint(keyring, "demo", [("budget", "25")]).token
    headers = {"authorization": f"Bearer {token}"}
    with httpx.Client(base_url=metered_stack.url, trust_env=False, timeout=10) as client:
        cheaper = client.get("/metered/cost/2", headers=headers)
        assert cheaper.status_code == 200 and "x-satgate-cost" not in cheaper.headers  # the client never sees it
        assert cheaper.headers["x-satgate-credits-remaining"] == "24"  # the route's cost (1) reserved at the check
        settles_to(metered_stack, token, 23)  # settled to 2
        assert client.get("/metered/cost/9", headers=headers).status_code == 200
        settles_to(metered_stack, token, 14)  # 1 reserved, 8 more charged
        assert client.get("/metered/nocost", headers=headers).status_code == 200
        time.sleep(0.5)
        assert remaining(metered_stack, token) == 13  # no header: the reservation stands
        assert client.get("/metered/cost/30", headers=headers).status_code == 200
        settles_to(metered_stack, token, 0)  # 12 of the 29 more could still be paid
        assert client.get("/metered/cost/1", headers=headers).status_code == 402  # nothing left to reserve
    settled = [r["details"] for r in audit_records(metered_stack) if r["type"] == "debit_settled"]
    assert [(d["reserved"], d["actual"], d["charged"], d["overshoot"]) for d in settled] == [
        (1, 2, 2, 0),
        (1, 9, 9, 0),
        (1, 30, 13, 17),
    ]


def test_an_mcp_tool_server_reporting_its_cost_settles_the_tools_price(metered_stack):
    keyring = load_keyring(metered_stack.state_dir / "keyring.json")
    token = mint(keyring, "demo", [("budget", "10")]).token
    call = {"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": {"name": "search", "arguments": {"cost": 4}}}
    with httpx.Client(base_url=metered_stack.url, trust_env=False, timeout=10) as client:
        answer = client.post(
            "/mcp",
            content=json.dumps(call),
            headers={"authorization": f"Bearer {token}", "content-type": "application/json"},
        )
    assert answer.status_code == 200 and answer.json()["id"] == 7
    assert answer.headers["x-satgate-credits-remaining"] == "9"  # the default price of a tool call, reserved
    settles_to(metered_stack, token, 6)  # the tool server said 4


def test_an_authz_restart_loses_no_settlement_envoy_sends_after_it(metered_stack):
    keyring = load_keyring(metered_stack.state_dir / "keyring.json")
    token = mint(keyring, "demo", [("budget", "20")]).token
    headers = {"authorization": f"Bearer {token}"}
    metered_stack.restart_authz()  # Envoy's stream to it breaks; it reconnects with the next entry
    with httpx.Client(base_url=metered_stack.url, trust_env=False, timeout=10) as client:
        for _ in range(3):
            assert client.get("/metered/cost/1", headers=headers).status_code == 200
    settles_to(metered_stack, token, 17)


def test_a_resent_or_duplicated_entry_settles_once(metered_stack, transport):
    """What Envoy resends after a reconnect, or a second Envoy sending the same entry: settled once."""
    from authz_server.delivery import COST_KEY, COST_NAMESPACE

    keyring = load_keyring(metered_stack.state_dir / "keyring.json")
    token = mint(keyring, "demo", [("budget", "10")]).token
    context = {"settle": "response_header"}
    message, log = claimed_entry(metered_stack, transport, token, "/metered/x", context, "dup-settle")
    assert remaining(metered_stack, token) == 9
    log.common_properties.metadata.filter_metadata[COST_NAMESPACE].fields[COST_KEY].string_value = "0"
    log.response.response_code.value = 200
    resend_twice(metered_stack, transport, message)
    settles_to(metered_stack, token, 10)
    time.sleep(0.3)
    assert remaining(metered_stack, token) == 10  # settled once: the reserved credit given back, never more
