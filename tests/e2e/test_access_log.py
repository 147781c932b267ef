"""The shipped Envoy configs log what the product documents promise — timestamp, token identifier, route, method,
status, latency, credits charged — and nothing else: no query string (it may carry e-mails and keys), no
payloads. Through real Envoy on both transports."""

import json
import time

import pytest

from satgate.tokens.mint import mint

pytestmark = pytest.mark.e2e

PROMISED = {"time", "token_id", "route", "method", "status", "duration_ms", "credits_charged"}


def test_the_access_log_holds_the_promised_fields_and_no_query_string(stack, stack_keyring, client):
    token = mint(stack_keyring, "acme", [("scope", "api:*"), ("budget", "10")])
    marker = f"/v1/hello-{time.monotonic_ns()}"
    response = client.get(
        f"{marker}?email=alice@example.com&api_key=SECRET123", headers={"authorization": f"Bearer {token.token}"}
    )
    assert response.status_code == 200
    deadline = time.monotonic() + 10  # Envoy flushes its stdout log within a second
    while not (lines := [line for line in stack.log_tail("envoy", 2000).splitlines() if marker in line]):
        assert time.monotonic() < deadline, "no access log entry"
        time.sleep(0.1)
    (line,) = lines
    assert "SECRET123" not in line and "alice@example.com" not in line
    entry = json.loads(line)
    assert set(entry) == PROMISED
    assert (entry["route"], entry["method"], entry["status"], entry["token_id"]) == (
        marker,
        "GET",
        200,
        token.identifier.token_id,
    )
    assert str(entry["credits_charged"]) == "1"  # a number on gRPC's metadata, text on the HTTP transport's
