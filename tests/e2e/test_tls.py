"""Envoy → authz over mTLS (SPEC: Control plane — TLS), through real Envoy on both transports with certificates
made at test time: checks pass over TLS with Envoy's client certificate, a client without one is refused, and a
rotated server certificate is served from the next handshake without a restart."""

import os
import socket
import ssl
import time

import httpx
import pytest
from cryptography import x509

from satgate.keyring import load_keyring
from satgate.tokens.mint import mint
from satgate_dev.devstack import LOOPBACK, Stack, StackPorts
from tests.tls_certs import Ca, write_pki

from .conftest import TRANSPORTS

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module", params=TRANSPORTS)
def tls_stack(request, tmp_path_factory):
    base = tmp_path_factory.mktemp("tls")
    ca = Ca.create()
    pki = write_pki(base / "pki", ca)
    stack = Stack(
        base / "stack",
        StackPorts.free(),
        transport=request.param,
        config_overrides={
            "authz": {
                "tls": {
                    "cert_file": str(pki["server_cert"]),
                    "key_file": str(pki["server_key"]),
                    "client_ca_file": str(pki["ca"]),
                }
            }
        },
        authz_tls={"ca": pki["ca"], "cert": pki["client_cert"], "key": pki["client_key"]},
    )
    with stack as running:
        yield running, pki, ca


def authz_port(stack: Stack) -> int:
    return stack.ports.authz


def handshake(port: int, pki, *, with_client_cert: bool, http: bool) -> x509.Certificate:
    """A TLS handshake with the authz port; the server's certificate, or ssl.SSLError / OSError when refused."""
    context = ssl.create_default_context(cafile=str(pki["ca"]))
    context.check_hostname = False
    context.set_alpn_protocols(["http/1.1" if http else "h2"])
    if with_client_cert:
        context.load_cert_chain(pki["client_cert"], pki["client_key"])
    with (
        socket.create_connection((LOOPBACK, port), timeout=5) as raw,
        context.wrap_socket(raw, server_hostname="satgate-authz") as tls,
    ):
        if http:  # TLS 1.3 sends the refusal of a missing client certificate after the handshake
            tls.sendall(b"GET /readyz HTTP/1.1\r\nHost: satgate-authz\r\nConnection: close\r\n\r\n")
            assert tls.recv(64).startswith(b"HTTP/1.1 204")
        else:
            tls.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + bytes.fromhex("000000040000000000"))
            assert tls.recv(9)  # the server's SETTINGS frame: it talks to us
        assert tls.version() in ("TLSv1.2", "TLSv1.3")
        return x509.load_der_x509_certificate(tls.getpeercert(binary_form=True))


def replace(path, content: bytes) -> None:
    """Atomically, as a Secret volume changes: a new file moved over the old one."""
    fresh = path.with_name(f".{path.name}.new")
    fresh.write_bytes(content)
    os.replace(fresh, path)


def wait_until(condition, message: str, seconds: float = 15) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, message
        time.sleep(0.1)


def test_checks_run_over_mtls(tls_stack):
    stack, _pki, _ca = tls_stack
    keyring = load_keyring(stack.state_dir / "keyring.json")
    token = mint(keyring, "acme", [("scope", "api:*"), ("budget", "2")]).token
    with httpx.Client(base_url=stack.url, trust_env=False, timeout=10) as client:
        statuses = [client.get("/v1/items", headers={"Authorization": f"Bearer {token}"}).status_code for _ in range(3)]
        assert statuses == [200, 200, 402]
        assert client.get("/v1/items").status_code == 401


def test_a_client_without_a_certificate_is_refused(tls_stack):
    stack, pki, _ca = tls_stack
    http = stack.transport == "http"
    assert handshake(authz_port(stack), pki, with_client_cert=True, http=http)
    with pytest.raises((ssl.SSLError, OSError, AssertionError)):
        handshake(authz_port(stack), pki, with_client_cert=False, http=http)


def test_a_rotated_certificate_is_served_without_a_restart(tls_stack):
    stack, pki, ca = tls_stack
    http = stack.transport == "http"
    before = handshake(authz_port(stack), pki, with_client_cert=True, http=http)
    cert, key = ca.issue("satgate-authz")  # a new certificate (and key) from the same CA, as a renewal is
    replace(pki["server_key"], key)
    replace(pki["server_cert"], cert)
    wait_until(
        lambda: (
            handshake(authz_port(stack), pki, with_client_cert=True, http=http).serial_number != before.serial_number
        ),
        "the authz server did not pick up the new certificate",
    )
    seen = handshake(authz_port(stack), pki, with_client_cert=True, http=http)
    assert seen.serial_number == x509.load_pem_x509_certificate(cert).serial_number
    keyring = load_keyring(stack.state_dir / "keyring.json")
    token = mint(keyring, "acme", [("scope", "api:*")]).token
    with httpx.Client(base_url=stack.url, trust_env=False, timeout=10) as client:
        assert client.get("/v1/items", headers={"Authorization": f"Bearer {token}"}).status_code == 200
