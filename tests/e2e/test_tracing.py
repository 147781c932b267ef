"""Tracing through the running stack on both ext_authz transports: the authz server's check span and the Mint's
exchange span reach a real OTLP/HTTP receiver on loopback, each in the trace of the request's traceparent."""

import os

import httpx
import pytest

from satgate.keyring import load_keyring
from satgate.tokens.mint import mint
from satgate_dev.demo_idp import DemoIdp
from satgate_dev.devstack import Stack, StackPorts
from tests.otlp_receiver import OtlpReceiver

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def receiver():
    started = OtlpReceiver()
    yield started
    started.close()


@pytest.fixture(scope="module")
def traced_stack(tmp_path_factory, transport, receiver):
    os.environ["OTEL_BSP_SCHEDULE_DELAY"] = "100"  # export within 0.1 s (the SDK's default batch delay is 5 s)
    try:
        overrides = {"tracing": {"otlp_endpoint": receiver.endpoint}}
        state = tmp_path_factory.mktemp("traced")
        with Stack(state, StackPorts.free(), config_overrides=overrides, transport=transport) as running:
            yield running
    finally:
        del os.environ["OTEL_BSP_SCHEDULE_DELAY"]


def traceparent(trace_id: str) -> str:
    return f"00-{trace_id}-{'ab' * 8}-01"


def test_checks_and_exchanges_are_spans_in_the_callers_trace(traced_stack, receiver, transport):
    keyring = load_keyring(traced_stack.state_dir / "keyring.json")
    token = mint(keyring, "demo", [("scope", "api:read"), ("budget", "5")]).token
    check_trace = ("1" if transport == "grpc" else "2") * 32
    with httpx.Client(base_url=traced_stack.url, trust_env=False, timeout=10) as client:
        response = client.get(
            "/v1/items", headers={"authorization": f"Bearer {token}", "traceparent": traceparent(check_trace)}
        )
    assert response.status_code == 200
    (check,) = receiver.wait_for(lambda s: s.name == "satgate.check" and s.trace_id == check_trace)
    assert check.service == "satgate-authz" and check.parent_span_id == "ab" * 8
    assert (check.attributes["satgate.decision"], check.attributes["satgate.tenant"]) == (200, "demo")
    assert check.attributes["satgate.credits.charged"] == 1 and "satgate.ledger.seconds" in check.attributes
    assert token not in str(check.attributes)

    exchange_trace = ("3" if transport == "grpc" else "4") * 32
    jwt = DemoIdp.load(traced_stack.idp_state).token("agent-traced", "satgate")
    exchanged = httpx.post(
        f"http://127.0.0.1:{traced_stack.ports.mint}/api/mint/exchange",
        json={"credentials": jwt},
        headers={"traceparent": traceparent(exchange_trace)},
        timeout=10,
    )
    assert exchanged.status_code == 200
    (exchange,) = receiver.wait_for(lambda s: s.name == "satgate.exchange" and s.trace_id == exchange_trace)
    assert exchange.service == "satgate-mint"
    assert exchange.attributes["satgate.outcome"] == "issued"
    assert exchange.attributes["satgate.token_id"] == exchanged.json()["token_id"]
    assert jwt not in str(exchange.attributes) and exchanged.json()["token"] not in str(exchange.attributes)
