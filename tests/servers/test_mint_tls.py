"""The Mint over TLS with client certificates (SPEC: Control plane — TLS): HTTP (public and admin listeners) and
gRPC accept clients the CA issued and refuse the others; a bad certificate file refuses to start in one line."""

import ssl
import sys
import urllib.error
import urllib.request

import grpc
import pytest
import yaml
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tests.servers.conftest import free_address, mint_config, refused_line, start_mint, wait_for_event
from tests.tls_certs import write_pki

pytestmark = pytest.mark.e2e


def with_tls(config, pki, **extra):
    doc = yaml.safe_load(config.read_text())
    doc["mint"]["tls"] = {"cert_file": str(pki["server_cert"]), "key_file": str(pki["server_key"]), **extra}
    config.write_text(yaml.safe_dump(doc))
    return config


def https_status(url: str, pki, *, client_cert: bool) -> int:
    context = ssl.create_default_context(cafile=str(pki["ca"]))
    if client_cert:
        context.load_cert_chain(pki["client_cert"], pki["client_key"])
    with urllib.request.urlopen(url, timeout=5, context=context) as response:
        return response.status


def grpc_health(target: str, pki, *, client_cert: bool) -> int:
    credentials = grpc.ssl_channel_credentials(
        pki["ca"].read_bytes(),
        private_key=pki["client_key"].read_bytes() if client_cert else None,
        certificate_chain=pki["client_cert"].read_bytes() if client_cert else None,
    )
    with grpc.secure_channel(target, credentials, options=[("grpc.ssl_target_name_override", "localhost")]) as channel:
        return health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=5).status


def test_mint_serves_https_and_grpc_with_mtls(tmp_path, keyring_file):
    pki = write_pki(tmp_path / "pki", server_name="localhost")
    listen, grpc_listen, admin_listen = free_address(), free_address(), free_address()
    config = mint_config(tmp_path, keyring_file, listen=listen, grpc_listen=grpc_listen, admin_listen=admin_listen)
    with_tls(config, pki, client_ca_file=str(pki["ca"]))
    proc = start_mint(config)
    try:
        started = wait_for_event(proc, "mint_listening")
        assert (started["tls"], started["mtls"]) == (True, True)
        for address in (listen, admin_listen):
            assert https_status(f"https://localhost:{address.rpartition(':')[2]}/healthz", pki, client_cert=True) == 200
            with pytest.raises((urllib.error.URLError, ssl.SSLError, ConnectionError)):
                https_status(f"https://localhost:{address.rpartition(':')[2]}/healthz", pki, client_cert=False)
        with pytest.raises((urllib.error.URLError, ConnectionError)):  # plain HTTP on a TLS port gets nowhere
            urllib.request.urlopen(f"http://{listen}/healthz", timeout=5)
        assert grpc_health(grpc_listen, pki, client_cert=True) == health_pb2.HealthCheckResponse.SERVING
        with pytest.raises(grpc.RpcError) as refused:
            grpc_health(grpc_listen, pki, client_cert=False)
        assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
    finally:
        proc.terminate()
        proc.communicate(timeout=20)


def test_a_certificate_that_does_not_load_is_one_line(tmp_path, keyring_file):
    pki = write_pki(tmp_path / "pki")
    pki["server_key"].write_text("not a key")
    config = with_tls(mint_config(tmp_path, keyring_file, listen=free_address()), pki)
    line = refused_line([sys.executable, "-m", "satgate_cli", "mint", "--config", str(config)])
    assert "mint.tls: cannot load cert_file" in line, line


def test_authz_with_a_certificate_that_does_not_load_is_one_line(tmp_path, keyring_file):
    pki = write_pki(tmp_path / "pki")
    pki["ca"].write_text("not a CA")
    config = mint_config(tmp_path, keyring_file)
    doc = yaml.safe_load(config.read_text())
    doc["authz"] = {
        "listen": free_address(),
        "tls": {
            "cert_file": str(pki["server_cert"]),
            "key_file": str(pki["server_key"]),
            "client_ca_file": str(pki["ca"]),
        },
    }
    config.write_text(yaml.safe_dump(doc))
    line = refused_line([sys.executable, "-m", "satgate_cli", "authz", "--config", str(config)])
    assert "authz.tls: cannot load client_ca_file" in line, line
