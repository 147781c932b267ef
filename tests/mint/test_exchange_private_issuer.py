"""An issuer that is not public, like the in-cluster Kubernetes API server: discovery and JWKS over TLS under the
cluster's own CA, readable only with a bearer token (the Mint's own service account token)."""

import datetime
import ipaddress
import ssl
from pathlib import Path

import pytest
from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from mint_server.policies.files import load_policies
from mint_server.policies.models import PolicyError
from satgate_dev.demo_idp import DemoIdp
from satgate_dev.devstack import free_port

from .conftest import oidc_policy, policies

READER_TOKEN = "mint-service-account-token"


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def make_ca(tmp_path: Path, name: str) -> tuple[Path, ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(name))
        .issuer_name(_name(name))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    path = tmp_path / f"{name}.crt"
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return path, key, cert


def server_tls(tmp_path: Path, ca_key: ec.EllipticCurvePrivateKey, ca_cert: x509.Certificate) -> ssl.SSLContext:
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name("127.0.0.1"))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    cert_path, key_path = tmp_path / "server.crt", tmp_path / "server.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert_path, key_path)
    return context


class PrivateIssuer:
    def __init__(self, tmp_path: Path) -> None:
        self.ca_file, ca_key, ca_cert = make_ca(tmp_path, "cluster-ca")
        self.tls = server_tls(tmp_path, ca_key, ca_cert)
        self.port = free_port()
        self.idp = DemoIdp(issuer=f"https://127.0.0.1:{self.port}")
        self.authorizations: list[str | None] = []  # what each request presented

        @web.middleware
        async def require_token(request: web.Request, handler):
            presented = request.headers.get("Authorization")
            self.authorizations.append(presented)
            if presented != f"Bearer {READER_TOKEN}":
                return web.json_response({"kind": "Status", "code": 401}, status=401)
            return await handler(request)

        self.app = self.idp.app()
        self.app.middlewares.append(require_token)


@pytest.fixture
async def private_issuer(tmp_path):
    issuer = PrivateIssuer(tmp_path)
    runner = web.AppRunner(issuer.app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", issuer.port, ssl_context=issuer.tls).start()
    yield issuer
    await runner.cleanup()


def token_file(tmp_path: Path) -> Path:
    path = tmp_path / "sa-token"
    path.write_text(READER_TOKEN + "\n")
    return path


async def test_exchange_against_a_private_issuer_with_its_ca_and_a_reader_token(start_mint, private_issuer, tmp_path):
    extra = f"ca_file: {private_issuer.ca_file}\n        bearer_token_file: {token_file(tmp_path)}"
    mint = await start_mint(policies(oidc_policy(private_issuer.idp.issuer, provider="kubernetes", extra=extra)))
    status, body = await mint.exchange(private_issuer.idp.token("agent-1", "satgate"))
    assert status == 200, body
    assert body["budget_credits"] == 5
    assert private_issuer.authorizations == [f"Bearer {READER_TOKEN}"] * 2  # discovery, then JWKS


async def test_without_the_reader_token_the_issuer_refuses_and_nothing_is_issued(start_mint, private_issuer):
    extra = f"ca_file: {private_issuer.ca_file}"
    mint = await start_mint(policies(oidc_policy(private_issuer.idp.issuer, extra=extra)))
    status, body = await mint.exchange(private_issuer.idp.token("agent-1", "satgate"))
    assert (status, body["error"]) == (401, "invalid_identity")
    assert private_issuer.authorizations == [None]
    fetches = mint.service.metrics.registry.get_sample_value("satgate_mint_jwks_fetches_total", {"result": "error"})
    assert fetches == 1


async def test_a_server_the_ca_does_not_vouch_for_never_sees_the_token(start_mint, private_issuer, tmp_path):
    other_ca, _, _ = make_ca(tmp_path, "some-other-ca")
    extra = f"ca_file: {other_ca}\n        bearer_token_file: {token_file(tmp_path)}"
    mint = await start_mint(policies(oidc_policy(private_issuer.idp.issuer, extra=extra)))
    status, _ = await mint.exchange(private_issuer.idp.token("agent-1", "satgate"))
    assert status == 401
    assert private_issuer.authorizations == []  # the TLS handshake failed before any request was sent


def test_a_reader_token_without_a_pinned_ca_is_refused_at_load(tmp_path):
    path = tmp_path / "policies.yaml"
    extra = f"bearer_token_file: {token_file(tmp_path)}"
    path.write_text(policies(oidc_policy("https://kubernetes.default.svc", provider="kubernetes", extra=extra)))
    with pytest.raises(PolicyError, match="bearer_token_file needs ca_file"):
        load_policies(path)
