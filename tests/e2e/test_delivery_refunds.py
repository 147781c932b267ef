"""Pay for delivered requests only, through real Envoy on both ext_authz transports: on a refund_on route an
upstream that answers 503 or resets the connection leaves the budget as it was (Envoy's access-log stream refunds
the debit); a 200 is charged; an authz server restarted mid-stream refunds what Envoy delivers after the restart."""

import asyncio
import sys
import time
from pathlib import Path

import httpx
import pytest

from satgate.config import load_config
from satgate.keyring import load_keyring
from satgate.tokens.mint import mint
from satgate_dev.devstack import Stack, StackPorts

pytestmark = pytest.mark.e2e
UPSTREAM = [sys.executable, str(Path(__file__).with_name("faulty_upstream.py")), "--port", "{port}"]
ROUTES = [{"match": {"path_prefix": "/paid/"}, "settings": {"refund_on": "5xx,reset"}}]


@pytest.fixture(scope="module")
def paid_stack(tmp_path_factory, transport):
    overrides = {"authz": {"routes": ROUTES}}
    state = tmp_path_factory.mktemp("paid")
    stack = Stack(state, StackPorts.free(), config_overrides=overrides, transport=transport, upstream_argv=UPSTREAM)
    with stack:
        yield stack


def audit_records(stack: Stack) -> list[dict]:
    async def read() -> list[dict]:
        audit = load_config(stack.config_path).open_audit_log()
        try:
            return [record for _seq, record, _prev, _hash in await audit.records()]
        finally:
            await audit.close()

    return asyncio.run(read())


def remaining(stack: Stack, token: str) -> int:
    verified = httpx.post(
        f"http://127.0.0.1:{stack.ports.mint}/api/mint/verify", headers={"authorization": f"Bearer {token}"}
    )
    return verified.json()["remaining"]


def settles_to(stack: Stack, token: str, expected: int, timeout: float = 10.0) -> None:
    """Access-log entries arrive after the response: wait (bounded) until the budget shows them."""
    deadline = time.monotonic() + timeout
    while (left := remaining(stack, token)) != expected:
        assert time.monotonic() < deadline, f"remaining {left}, expected {expected}\n{stack.log_tail('authz')}"
        time.sleep(0.05)


def test_only_delivered_requests_are_paid_for(paid_stack):
    keyring = load_keyring(paid_stack.state_dir / "keyring.json")
    token = mint(keyring, "demo", [("budget", "10")]).token
    with httpx.Client(base_url=paid_stack.url, trust_env=False, timeout=10) as client:
        headers = {"authorization": f"Bearer {token}"}
        assert client.get("/paid/ok", headers=headers).status_code == 200
        settles_to(paid_stack, token, 9)  # delivered: charged
        assert client.get("/paid/503", headers=headers).status_code == 503
        assert client.get("/paid/reset", headers=headers).status_code == 503  # Envoy: upstream reset
        settles_to(paid_stack, token, 9)  # neither was delivered: both refunded
        assert client.get("/elsewhere/503", headers=headers).status_code == 503  # no refund_on: charged
        time.sleep(0.5)
        assert remaining(paid_stack, token) == 8

        paid_stack.restart_authz()  # Envoy's stream to it breaks; it reconnects with the next entry
        for _ in range(3):
            assert client.get("/paid/503", headers=headers).status_code == 503
        settles_to(paid_stack, token, 8)
        assert client.get("/paid/ok", headers=headers).status_code == 200
        settles_to(paid_stack, token, 7)
    refunds = [r for r in audit_records(paid_stack) if r["type"] == "debit_refunded"]
    assert sorted(r["details"]["reason"] for r in refunds) == ["upstream_5xx"] * 4 + ["upstream_reset"]


def claimed_entry(stack: Stack, transport: str, token: str, path: str, context: dict, request_id: str):
    """One check through the authz server, and an access-log message whose entry carries the allow's metadata
    as Envoy keeps it (the gRPC answer's dynamic_metadata, or the HTTP answer's x-satgate-log-* headers)."""
    import grpc
    from envoy.service.accesslog.v3 import als_pb2
    from envoy.service.auth.v3 import external_auth_pb2_grpc
    from google.protobuf.struct_pb2 import Struct

    from authz_server.delivery import EXT_AUTHZ_NAMESPACE
    from tests.authz.conftest import check_request

    if transport == "grpc":
        with grpc.insecure_channel(f"127.0.0.1:{stack.ports.authz}") as channel:
            answer = external_auth_pb2_grpc.AuthorizationStub(channel).Check(
                check_request(token, path=path, context=context), timeout=5
            )
        metadata = answer.dynamic_metadata
    else:
        with httpx.Client(trust_env=False) as http:
            reply = http.get(
                f"http://127.0.0.1:{stack.ports.authz}/satgate/check{path}",
                headers={"authorization": f"Bearer {token}", "x-request-id": request_id},
            )
        metadata = Struct()
        metadata.update({k: v for k, v in reply.headers.items() if k.startswith("x-satgate-log-")})
    message = als_pb2.StreamAccessLogsMessage()
    message.identifier.log_name = "satgate"
    log = message.http_logs.log_entry.add()
    log.common_properties.metadata.filter_metadata[EXT_AUTHZ_NAMESPACE].CopyFrom(metadata)
    return message, log


def resend_twice(stack: Stack, transport: str, message) -> None:
    """A stream, then a "reconnect" resending the same entry twice — as Envoy may, or two Envoys would."""
    import grpc
    from envoy.service.accesslog.v3 import als_pb2_grpc

    port = stack.ports.authz if transport == "grpc" else stack.als_ports["authz"]
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = als_pb2_grpc.AccessLogServiceStub(channel)
        for _stream in range(2):
            stub.StreamAccessLogs(iter([message, message]), timeout=5)


def test_a_resent_or_duplicated_entry_refunds_once(paid_stack, transport):
    """What Envoy resends after a reconnect, or a second Envoy sending the same entry: the running authz server's
    access-log service, over two streams, refunds the debit once (the claim comes from a real Check answer)."""
    keyring = load_keyring(paid_stack.state_dir / "keyring.json")
    token = mint(keyring, "demo", [("budget", "10")]).token
    message, log = claimed_entry(paid_stack, transport, token, "/paid/x", {"refund_on": "5xx"}, "dup-1")
    assert remaining(paid_stack, token) == 9
    log.response.response_code.value = 503
    resend_twice(paid_stack, transport, message)
    settles_to(paid_stack, token, 10)
    time.sleep(0.3)
    assert remaining(paid_stack, token) == 10  # refunded once, never more than was charged
