"""Exchanging JWTs from a real local OIDC issuer, and the attacks on that exchange."""

import asyncio
import base64
import json
import time

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from mint_server.exchange.identity_budgets import bucket_id
from satgate.ledger.windows import Period
from satgate.tokens.verify import TokenVerifier
from satgate_dev.demo_idp import SigningKeyPair

from .conftest import oidc_policy, policies


async def test_exchange_issues_a_token_the_authz_server_accepts(idp, start_mint):
    mint = await start_mint(
        policies(
            oidc_policy(
                idp.issuer,
                issue='budget_credits: 25, ttl: 2h, scopes: ["api:read", "mcp:*"], max_delegation_depth: 1,'
                ' label_template: "agent {{ .Claims.sub }} run {{ .Claims.run_id }}",'
                ' caveats: {methods: "GET", department: eng}',
            )
        )
    )
    status, body = await mint.exchange(idp.token("agent-7", "satgate", run_id=4242))
    assert status == 200, body
    assert (body["tenant"], body["policy"], body["budget_credits"]) == ("acme", "agents", 25)
    caveats = body["caveats"]
    identity_bucket = bucket_id("acme", "agents", "0", kind="credits", period=Period.parse("2h"), key="agent-7")
    assert caveats[1:] == [
        "scope = api:read,mcp:*",
        f"budget_bucket = {identity_bucket}/2h",  # the identity's budget (SPEC v2.2): the ledger holds its 25
        "max_delegation_depth = 1",
        "label = agent agent-7 run 4242",
        "department = eng",
        "methods = GET",
    ]
    expires = time.mktime(time.strptime(body["expires_at"], "%Y-%m-%dT%H:%M:%SZ")) - time.timezone
    assert abs(expires - (time.time() + 7200)) < 60
    token = TokenVerifier(mint.keyring(), attribute_keys=["department"]).verify(body["token"])
    assert (token.tenant, token.token_id, token.attribute("department")) == ("acme", body["token_id"], "eng")
    assert [(b.bucket_id, b.limit) for b in token.buckets] == [(identity_bucket, 0)]
    assert (body["identity_budget"]["remaining"], body["identity_budget"]["period"]) == (25, "2h")


async def test_credentials_may_come_as_a_bearer_header(idp, start_mint):
    mint = await start_mint(policies(oidc_policy(idp.issuer)))
    response = await mint.client.post(
        "/api/mint/exchange", headers={"Authorization": f"Bearer {idp.token('agent-1', 'satgate')}"}
    )
    assert response.status == 200


async def test_ttl_is_capped_by_policy_and_global_max(idp, start_mint):
    mint = await start_mint(policies(oidc_policy(idp.issuer, issue="ttl: 7d", extra="max_ttl: 3h")), max_ttl="2h")
    _, body = await mint.exchange(idp.token("agent-1", "satgate"))
    expires = time.mktime(time.strptime(body["expires_at"], "%Y-%m-%dT%H:%M:%SZ")) - time.timezone
    assert abs(expires - (time.time() + 7200)) < 60


def forged_with(key, issuer: str, headers=None, alg="RS256", **overrides) -> str:
    now = int(time.time())
    claims = {"iss": issuer, "sub": "agent-1", "aud": "satgate", "iat": now, "exp": now + 300, **overrides}
    return jwt.encode({k: v for k, v in claims.items() if v is not None}, key, algorithm=alg, headers=headers)


def b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


async def expect_401(mint, token: str, reason_fragment: str) -> None:
    status, body = await mint.exchange(token)
    assert (status, body["error"]) == (401, "invalid_identity"), body
    assert reason_fragment in body["message"]


async def test_alg_none_is_refused(idp, start_mint):
    mint = await start_mint(policies(oidc_policy(idp.issuer)))
    now = int(time.time())
    claims = {"iss": idp.issuer, "sub": "agent-1", "aud": "satgate", "iat": now, "exp": now + 60}
    unsigned = f"{b64({'alg': 'none', 'typ': 'JWT'})}.{b64(claims)}."
    await expect_401(mint, unsigned, "asymmetric algorithms only")


async def test_hs256_signed_with_the_issuers_public_key_is_refused(idp, start_mint):
    mint = await start_mint(policies(oidc_policy(idp.issuer)))
    public_pem = idp.active.private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    header = b64({"alg": "HS256", "typ": "JWT", "kid": idp.active.kid})
    now = int(time.time())
    payload = b64({"iss": idp.issuer, "sub": "agent-1", "aud": "satgate", "iat": now, "exp": now + 60})
    import hashlib
    import hmac

    signature = (
        base64.urlsafe_b64encode(hmac.digest(public_pem, f"{header}.{payload}".encode(), hashlib.sha256))
        .rstrip(b"=")
        .decode()
    )
    await expect_401(mint, f"{header}.{payload}.{signature}", "asymmetric algorithms only")


async def test_token_signed_by_an_unknown_key_with_a_known_kid_is_refused(idp, start_mint):
    mint = await start_mint(policies(oidc_policy(idp.issuer)))
    attacker = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    await expect_401(mint, forged_with(attacker, idp.issuer, headers={"kid": idp.active.kid}), "signature")


async def test_jku_x5u_and_jwk_headers_are_ignored(idp, start_mint):
    mint = await start_mint(policies(oidc_policy(idp.issuer)))
    attacker = SigningKeyPair.generate()
    headers = {
        "kid": attacker.kid,
        "jku": f"{idp.issuer}/evil-jwks",
        "x5u": "http://127.0.0.1:1/x5u",
        "jwk": attacker.public_jwk(),
    }
    await expect_401(
        mint, forged_with(attacker.private_key, idp.issuer, headers=headers), "not one of the issuer's keys"
    )


async def test_unknown_kid_flood_refetches_at_most_once(idp, start_mint):
    mint = await start_mint(policies(oidc_policy(idp.issuer)))
    assert (await mint.exchange(idp.token("agent-1", "satgate")))[0] == 200
    fetches = idp.served_jwks
    attacker = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    results = await asyncio.gather(
        *(mint.exchange(forged_with(attacker, idp.issuer, headers={"kid": f"made-up-{i}"})) for i in range(50))
    )
    assert all(status == 401 for status, _ in results)
    assert idp.served_jwks - fetches <= 1


async def test_key_rotation_works_without_restart(idp, start_mint):
    mint = await start_mint(policies(oidc_policy(idp.issuer)), jwks_refetch_seconds=1)
    assert (await mint.exchange(idp.token("agent-1", "satgate")))[0] == 200
    idp.rotate(keep_old=False)
    await asyncio.sleep(1.1)  # the refetch limit for unknown kids
    status, body = await mint.exchange(idp.token("agent-1", "satgate"))
    assert status == 200, body


@pytest.mark.parametrize(
    ("overrides", "fragment"),
    [
        ({"exp": int(time.time()) - 3600, "iat": int(time.time()) - 7200}, "expired"),
        ({"nbf": int(time.time()) + 3600}, "not valid yet"),
        ({"iat": int(time.time()) + 3600}, "not valid yet"),
        ({"aud": "someone-else"}, "audience"),
        ({"aud": ["other", "another"]}, "audience"),
        ({"exp": None}, "'exp'"),
        ({"iat": None}, "'iat'"),
    ],
)
async def test_claim_checks(idp, start_mint, overrides, fragment):
    mint = await start_mint(policies(oidc_policy(idp.issuer)))
    await expect_401(
        mint, forged_with(idp.active.private_key, idp.issuer, headers={"kid": idp.active.kid}, **overrides), fragment
    )


async def test_missing_aud_is_refused(idp, start_mint):
    mint = await start_mint(policies(oidc_policy(idp.issuer)))
    token = forged_with(idp.active.private_key, idp.issuer, headers={"kid": idp.active.kid}, aud=None)
    status, _ = await mint.exchange(token)
    assert status == 401


async def test_array_audience_containing_ours_is_accepted(idp, start_mint):
    mint = await start_mint(policies(oidc_policy(idp.issuer)))
    assert (await mint.exchange(idp.token("agent-1", ["other", "satgate"])))[0] == 200


async def test_leeway_is_sixty_seconds(idp, start_mint):
    mint = await start_mint(policies(oidc_policy(idp.issuer)))
    now = int(time.time())
    key, kid = idp.active.private_key, {"kid": idp.active.kid}
    assert (await mint.exchange(forged_with(key, idp.issuer, headers=kid, exp=now - 30, iat=now - 600)))[0] == 200
    assert (await mint.exchange(forged_with(key, idp.issuer, headers=kid, exp=now - 90, iat=now - 600)))[0] == 401


async def test_untrusted_issuer_and_cross_issuer_kid(idp, other_idp, start_mint):
    mint = await start_mint(policies(oidc_policy(idp.issuer)))
    await expect_401(mint, other_idp.token("agent-1", "satgate"), "not trusted")
    # Signed by the other issuer's key, with its kid, but claiming to be the trusted issuer.
    cross = forged_with(other_idp.active.private_key, idp.issuer, headers={"kid": other_idp.active.kid})
    await expect_401(mint, cross, "not one of the issuer's keys")


@pytest.mark.parametrize("junk", ["", "not-a-jwt", "a.b.c", "x" * 20000])
async def test_junk_credentials(idp, start_mint, junk):
    mint = await start_mint(policies(oidc_policy(idp.issuer)))
    status, body = await mint.exchange(junk)
    assert status in {400, 401}
    assert body["error"] in {"bad_request", "invalid_identity"}


async def test_bad_bodies(idp, start_mint):
    mint = await start_mint(policies(oidc_policy(idp.issuer)))
    for data in (b"{not json", b"[1, 2]", b'{"credentials": 7}'):
        response = await mint.client.post("/api/mint/exchange", data=data)
        assert response.status == 400
    huge = await mint.client.post("/api/mint/exchange", data=b"{" + b" " * 100_000 + b"}")
    assert huge.status == 413


async def test_idp_down_is_401_not_a_crash(start_mint):
    from satgate_dev.devstack import free_port

    dead = f"http://127.0.0.1:{free_port()}"
    mint = await start_mint(policies(oidc_policy(dead)))
    attacker = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    status, body = await mint.exchange(forged_with(attacker, dead, headers={"kid": "k"}))
    assert (status, body["error"]) == (401, "invalid_identity")
