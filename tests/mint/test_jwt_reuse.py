"""jwt_reuse: once — a policy's identity JWTs are exchanged at most once (by issuer and jti, or the whole token
without one) until they expire; the default keeps them reusable. Refusals are 401 `replayed` and audited."""

import time

import pytest
from sqlalchemy import select

from mint_server.policies.files import validate_policy
from mint_server.policies.models import PolicyError
from satgate.control_plane.schema import used_signatures

from .conftest import oidc_policy, policies


@pytest.fixture
async def mint_server(idp, start_mint):
    once = oidc_policy(idp.issuer, name="ci", match='sub: "ci-*"', extra="jwt_reuse: once")
    return await start_mint(policies(oidc_policy(idp.issuer), once))


async def test_a_jwt_is_exchanged_once_under_once_and_reused_by_default(idp, mint_server):
    with_jti = idp.token("ci-1", "satgate", jti="job-42")
    assert (await mint_server.exchange(with_jti))[0] == 200
    status, refused = await mint_server.exchange(with_jti)
    assert (status, refused["error"]) == (401, "replayed") and "'ci' allows each JWT once" in refused["message"]
    assert (await mint_server.exchange(idp.token("ci-1", "satgate", jti="job-43")))[0] == 200  # a new jti

    without_jti = idp.token("ci-2", "satgate")
    assert [(await mint_server.exchange(without_jti))[0] for _ in range(2)] == [200, 401]

    reusable = idp.token("agent-1", "satgate", jti="same")
    assert [(await mint_server.exchange(reusable))[0] for _ in range(3)] == [200, 200, 200]
    denied = [r for r in await mint_server.audit() if r["type"] == "exchange_denied"]
    assert [(r["policy"], r["actor"], r["details"]["reason"]) for r in denied] == [
        ("ci", "ci-1", "replayed"),
        ("ci", "ci-2", "replayed"),
    ]


async def test_the_used_key_lasts_until_the_jwt_could_no_longer_be_presented(idp, mint_server):
    jwt = idp.token("ci-3", "satgate", ttl=30, jti="short")
    assert (await mint_server.exchange(jwt))[0] == 200
    async with mint_server.service.store._engine.connect() as db:  # the control plane's record of it
        (row,) = (await db.execute(select(used_signatures))).mappings().all()
    assert time.time() + 30 + 60 - 5 < row["fresh_until"] <= time.time() + 30 + 60 + 1  # exp + the 60 s leeway


def test_jwt_reuse_takes_only_its_two_values():
    document = {
        "name": "p",
        "provider": "oidc",
        "issuer": "https://issuer.example",
        "audience": "satgate",
        "jwt_reuse": "twice",
        "trust_rules": [{"match": {"claims": {"sub": "x"}}, "issue": {"budget_credits": 1}}],
    }
    with pytest.raises(PolicyError, match="jwt_reuse"):
        validate_policy(document, frozenset(), tenant="acme")


async def test_a_jwt_without_jti_re_encoded_is_the_same_jwt(idp, mint_server):
    """Base64 padding on the signature segment leaves the signature the JWT library verifies unchanged: the same
    JWT, refused as replayed — the one-time key is what was signed, not the text as sent."""
    jwt = idp.token("ci-9", "satgate")
    assert (await mint_server.exchange(jwt))[0] == 200
    status, refused = await mint_server.exchange(jwt + "==")
    assert (status, refused.get("error")) == (401, "replayed")
    for variant in ("=", "====", "=="):  # whatever the library makes of it: never a second token
        assert (await mint_server.exchange(jwt + variant))[0] == 401
