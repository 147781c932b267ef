"""Mint hardening from the security review: key sources follow policy reloads, malformed JWT headers and AWS
header values are clean refusals (never 500) and audited, loopback means a loopback address, /verify honours
authz.tenants, and floods of unauthenticated refusals cost a few audit rows, not one each."""

import asyncio
import base64
import json

import pytest
from aiohttp import web
from hypothesis import given, settings
from hypothesis import strategies as st

from mint_server.identity import oidc
from mint_server.identity.base import IdentityError
from satgate.tokens.mint import mint as mint_token
from satgate.urls import https_unless_loopback, is_loopback_url
from satgate_dev.demo_idp import DemoIdp
from satgate_dev.devstack import free_port

from .conftest import oidc_policy, policies


async def serve(idp: DemoIdp, port: int) -> web.AppRunner:
    runner = web.AppRunner(idp.app())
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner


async def test_the_jwks_cache_follows_a_policy_reload_to_another_key_source(idp, start_mint):
    # Another IdP claiming the same issuer name, with its own keys: the policy is re-pointed at its JWKS.
    successor, port = DemoIdp(issuer=idp.issuer), free_port()
    runner = await serve(successor, port)
    try:
        mint = await start_mint(policies(oidc_policy(idp.issuer, extra=f"jwks_uri: {idp.issuer}/jwks")))
        assert (await mint.exchange(idp.token("agent-1", "satgate")))[0] == 200
        mint.policies_path.write_text(
            policies(oidc_policy(idp.issuer, extra=f"jwks_uri: http://127.0.0.1:{port}/jwks"))
        )
        await asyncio.sleep(0.5)
        status, body = await mint.exchange(idp.token("agent-1", "satgate"))
        assert (status, body["error"]) == (401, "invalid_identity")  # the old IdP's keys no longer work
        assert (await mint.exchange(successor.token("agent-1", "satgate")))[0] == 200
    finally:
        await runner.cleanup()


def forged_header(header: dict) -> str:
    def part(doc: dict) -> str:
        return base64.urlsafe_b64encode(json.dumps(doc).encode()).decode().rstrip("=")

    claims = {"iss": "http://127.0.0.1:1", "sub": "agent-1", "aud": "satgate", "exp": 4e9, "iat": 1}
    return f"{part(header)}.{part(claims)}.c2ln"


@pytest.mark.parametrize(
    "header",
    [
        {"alg": ["RS256"], "typ": "JWT"},
        {"alg": {"RS256": 1}},
        {"alg": None},
        {"alg": 256},
        {"alg": "RS256", "kid": ["a"]},
        {"alg": "RS256", "kid": {"x": 1}},
    ],
)
async def test_malformed_jwt_headers_are_401_and_audited(idp, start_mint, header):
    mint = await start_mint(policies(oidc_policy(idp.issuer)))
    status, body = await mint.exchange(forged_header(header))
    assert (status, body["error"]) == (401, "invalid_identity")
    await mint.service.refusals.flush()
    (record,) = await mint.audit()
    assert (record["type"], record["details"]["reason"], record["details"]["count"]) == (
        "exchange_denied",
        "invalid_identity",
        1,
    )


@pytest.mark.parametrize(
    ("url", "loopback"),
    [
        ("http://127.0.0.1:8090", True),
        ("http://127.9.9.9/", True),
        ("http://[::1]:80/", True),
        ("http://localhost:8090", True),
        ("http://127.attacker.example/", False),
        ("http://127.0.0.1.nip.io/", False),
        ("http://localhost.attacker.example/", False),
        ("http://10.0.0.1/", False),
        ("http://[::ffff:127.0.0.1]/", False),  # an IPv4-mapped address is not ::1: refused, conservatively
    ],
)
def test_loopback_means_a_loopback_address(url, loopback):
    assert is_loopback_url(url) is loopback
    if not loopback:
        with pytest.raises(ValueError, match="https"):
            https_unless_loopback(url)


async def test_a_policy_naming_a_fake_loopback_issuer_is_refused_at_load(start_mint):
    with pytest.raises(Exception, match="https"):
        await start_mint(policies(oidc_policy("http://127.attacker.example")))


async def test_verify_honours_authz_tenants(idp, start_mint, keyring):
    mint = await start_mint(policies(oidc_policy(idp.issuer)), authz={"tenants": ["acme"]})
    for tenant, valid in (("acme", True), ("globex", False)):
        token = mint_token(keyring, tenant, [("budget", "5")]).token
        response = await mint.client.post("/api/mint/verify", headers={"authorization": f"Bearer {token}"})
        body = await response.json()
        assert body["valid"] is valid
    assert body["error"] == "unknown_key"


async def test_a_flood_of_garbage_exchanges_costs_a_few_audit_rows(idp, start_mint):
    mint = await start_mint(policies(oidc_policy(idp.issuer)))
    statuses = await asyncio.gather(
        *(mint.client.post("/api/mint/exchange", json={"credentials": f"garbage-{i}"}) for i in range(300))
    )
    assert {r.status for r in statuses} == {401}
    assert (await mint.audit()) == []  # nothing written per request
    await mint.service.refusals.flush()
    (record,) = await mint.audit()
    assert record["details"]["count"] == 300
    assert (record["details"]["source"], record["details"]["reason"]) == ("127.0.0.1", "invalid_identity")
    await mint.service.refusals.flush()
    assert len(await mint.audit()) == 1  # an empty interval writes nothing


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=8,
)


@settings(max_examples=300)
@given(header=st.dictionaries(st.sampled_from(["alg", "kid", "typ", "jku", "crit", "x"]), json_values, max_size=4))
def test_any_jwt_header_is_peeked_or_refused_as_an_identity_error(header):
    try:
        peeked = oidc.peek(forged_header(header))
    except IdentityError:
        return
    assert isinstance(peeked.header["alg"], str) and peeked.header["alg"] in oidc.ASYMMETRIC_ALGORITHMS
    assert peeked.header.get("kid") is None or isinstance(peeked.header["kid"], str)
