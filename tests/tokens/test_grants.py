"""Sealed grants (SPEC v2.1): what a holder appends after the issuer's seal can never grant a scope, an
attribute or an admin role — checked directly and as a property over random tokens and appended caveats."""

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mint_server.admin.roles import ADMIN as ADMIN_SCOPE
from mint_server.admin.roles import role_of
from satgate.caveats import CaveatSyntaxError, RequestFacts
from satgate.caveats.seal import seal_value
from satgate.judge import judge
from satgate.keyring import Keyring
from satgate.routes import RouteSettings
from satgate.tokens import wire
from satgate.tokens.chain import chain_signatures, extend_signature
from satgate.tokens.delegate import delegate
from satgate.tokens.identifier import TokenIdentifier
from satgate.tokens.mint import attenuate, mint
from satgate.tokens.verify import TokenRejected, TokenVerifier

KEYRING = Keyring(active_kid="k1", keys={"k1": b"s" * 32})
ATTRIBUTES = ("department",)
VERIFIER = TokenVerifier(KEYRING, attribute_keys=ATTRIBUTES, refusal_cache_size=0)


def grants_admin(token) -> bool:
    return role_of(token) == ADMIN_SCOPE


def append_raw(token: str, *raw: bytes) -> str:
    """What any holder can do with any macaroon library: extend the chain with arbitrary caveats."""
    mac = wire.decode(token)
    signature = mac.signature
    for caveat in raw:
        signature = extend_signature(signature, caveat)
    return wire.encode(wire.WireMacaroon(mac.identifier, mac.caveats + raw, signature))


def facts(*required_scopes: str) -> RequestFacts:
    return RequestFacts(now=0, method="GET", path="/", host="h", source_ip="127.0.0.1", required_scopes=required_scopes)


def test_mint_seals_right_after_the_issuers_caveats():
    minted = mint(KEYRING, "acme", [("scope", "api:read"), ("department", "eng")], attribute_keys=ATTRIBUTES)
    mac = wire.decode(minted.token)
    sigs = chain_signatures(KEYRING.tenant_root_key("acme", "k1"), mac.identifier, mac.caveats)
    assert mac.caveats[-1] == f"seal = {seal_value(KEYRING.seal_key('acme', 'k1'), sigs[-2])}".encode()
    grants = VERIFIER.verify(minted.token).grants
    assert [c.patterns for c in grants.scopes] == [("api:read",)]
    assert grants.attribute("department") == "eng"


def test_the_seal_key_is_its_own_derivation():
    assert KEYRING.seal_key("acme", "k1") != KEYRING.tenant_root_key("acme", "k1")
    assert KEYRING.seal_key("acme", "k1") != KEYRING.seal_key("other", "k1")


def test_appended_scope_and_attribute_restrict_but_never_grant():
    scopeless = mint(KEYRING, "acme", [("budget", "10")]).token
    escalated = attenuate(
        scopeless, [("scope", "api:read,satgate:admin"), ("department", "eng")], attribute_keys=ATTRIBUTES
    )
    token = VERIFIER.verify(escalated)
    assert judge(token, RouteSettings(scopes=("api:read",)), facts("api:read")).error == "insufficient_scope"
    assert judge(token, RouteSettings(require=(("department", "eng"),)), facts()).caveat == "require.department"
    assert token.attribute("department") is None  # never claimed to an upstream either
    assert not grants_admin(token)
    assert judge(token, RouteSettings(), facts()) is None  # unscoped routes still admit it


def test_sealed_grants_pass_and_appended_caveats_narrow_them():
    parent = mint(
        KEYRING, "acme", [("scope", "api:*,satgate:admin"), ("department", "eng")], attribute_keys=ATTRIBUTES
    ).token
    assert judge(VERIFIER.verify(parent), RouteSettings(scopes=("api:write",)), facts("api:write")) is None
    assert grants_admin(VERIFIER.verify(parent))
    child = VERIFIER.verify(attenuate(parent, [("scope", "api:read")]))
    assert judge(child, RouteSettings(scopes=("api:read",)), facts("api:read")) is None
    assert judge(child, RouteSettings(scopes=("api:write",)), facts("api:write")).error == "insufficient_scope"
    assert not grants_admin(child)  # the appended scope does not permit the role
    other = VERIFIER.verify(attenuate(parent, [("department", "ops")], attribute_keys=ATTRIBUTES))
    assert judge(other, RouteSettings(require=(("department", "eng"),)), facts()) is not None


def test_a_bare_star_grants_route_scopes_but_no_admin_role():
    star = VERIFIER.verify(mint(KEYRING, "acme", [("scope", "*")]).token)
    assert judge(star, RouteSettings(scopes=("api:write",)), facts("api:write")) is None
    assert not grants_admin(star)


def test_delegation_never_seals_again():
    parent = mint(KEYRING, "acme", [("budget", "10")]).token
    child = delegate(
        parent, ttl_seconds=60, scopes=[ADMIN_SCOPE], caveats={"department": "eng"}, attribute_keys=ATTRIBUTES
    )
    assert [raw.startswith(b"seal = ") for raw in wire.decode(child.token).caveats].count(True) == 1
    token = VERIFIER.verify(child.token)
    assert token.grants.scopes == () and token.attribute("department") is None
    assert not grants_admin(token)


@pytest.mark.parametrize("caveats", [[("seal", "0" * 32)], [("scope", "api:read"), ("seal", "ab" * 16)]])
def test_nobody_passes_a_seal_in(caveats):
    with pytest.raises(CaveatSyntaxError, match="seal"):
        mint(KEYRING, "acme", caveats)
    with pytest.raises(CaveatSyntaxError, match="seal"):
        attenuate(mint(KEYRING, "acme").token, caveats)


def test_a_forged_seal_is_refused():
    unsealed = _unsealed([b"scope = satgate:admin"])
    forged = append_raw(unsealed, b"seal = " + b"0" * 32)
    assert _refusal(forged) == ("invalid_signature", "token seal does not verify")


def test_a_second_seal_is_refused_even_when_it_would_verify():
    sealed = mint(KEYRING, "acme", [("budget", "5")]).token
    mac = wire.decode(sealed)
    # A second seal as the issuer itself would compute it for this position: still refused.
    second = f"seal = {seal_value(KEYRING.seal_key('acme', 'k1'), mac.signature)}".encode()
    assert _refusal(append_raw(sealed, b"scope = satgate:admin", second))[0] == "invalid_signature"
    assert _refusal(append_raw(sealed, second)) == ("invalid_signature", "token carries more than one seal")


def test_a_seal_of_another_tenant_or_kid_does_not_verify():
    other = Keyring(active_kid="k2", keys={"k1": b"s" * 32, "k2": b"t" * 32})
    unsealed = _unsealed([b"scope = satgate:admin"])
    mac = wire.decode(unsealed)
    for seal_key in (
        KEYRING.seal_key("other", "k1"),
        other.seal_key("acme", "k2"),
        KEYRING.tenant_root_key("acme", "k1"),
    ):
        forged = append_raw(unsealed, f"seal = {seal_value(seal_key, mac.signature)}".encode())
        assert _refusal(forged)[0] == "invalid_signature"


def test_tokens_without_a_seal_verify_and_hold_no_grants():
    token = VERIFIER.verify(_unsealed([b"scope = api:*", b"department = eng"]))
    assert token.grants.scopes == () and token.attribute("department") is None
    assert judge(token, RouteSettings(scopes=("api:read",)), facts("api:read")).error == "insufficient_scope"


def _unsealed(raw: list[bytes]) -> str:
    ident = TokenIdentifier.new("acme", "k1").encode()
    sigs = chain_signatures(KEYRING.tenant_root_key("acme", "k1"), ident, raw)
    return wire.encode(wire.WireMacaroon(ident, tuple(raw), sigs[-1]))


def _refusal(token: str) -> tuple[str, str]:
    with pytest.raises(TokenRejected) as info:
        VERIFIER.verify(token)
    return info.value.denial.error, info.value.denial.message


# ---------------------------------------------------------------------------------------------- the property
SCOPES = ["api:read", "api:write", "api:*", "mcp:*", "satgate:admin", "satgate:*", "billing:read", "*"]
ROUTES = [
    RouteSettings(),
    *(RouteSettings(scopes=(s,)) for s in ("api:read", "api:write", "billing:read", "satgate:admin", "mcp:tool:x")),
    RouteSettings(scopes=("api:read", "api:write")),
    *(RouteSettings(require=(("department", d),)) for d in ("eng", "ops")),
    RouteSettings(scopes=("api:read",), require=(("department", "eng"),)),
]
scope_values = st.lists(st.sampled_from(SCOPES), min_size=1, max_size=3).map(",".join)
issuer_caveat = st.one_of(
    scope_values.map(lambda v: ("scope", v)),
    st.sampled_from(["eng", "ops"]).map(lambda v: ("department", v)),
    st.integers(1, 100).map(lambda v: ("budget", str(v))),
    st.just(("label", "x")),
)
appended_caveat = st.one_of(
    scope_values.map(lambda v: f"scope = {v}".encode()),
    st.sampled_from(["eng", "ops"]).map(lambda v: f"department = {v}".encode()),
    st.binary(min_size=16, max_size=16).map(lambda b: f"seal = {b.hex()}".encode()),
    st.just(b"seal = replay"),  # replaced below by a copy of the token's own seal
    st.just(b"budget = 1"),
)


def admitted(token_text: str) -> set[object]:
    """The routes (by index) and the admin role a token reaches; nothing when it does not verify."""
    try:
        token = VERIFIER.verify(token_text)
    except TokenRejected:
        return set()
    reached: set[object] = {i for i, route in enumerate(ROUTES) if judge(token, route, facts(*route.scopes)) is None}
    if grants_admin(token):
        reached.add(ADMIN_SCOPE)
    return reached


def granted_by_issuer(issued: list[tuple[str, str]]) -> set[object]:
    """A reference written from the SPEC alone: what the issuer's caveats grant (an upper bound on reach)."""
    patterns = [p for key, value in issued if key == "scope" for p in value.split(",")]
    departments = {value for key, value in issued if key == "department"}

    def grants(scope: str) -> bool:
        return any(p == "*" or p == scope or (p.endswith(":*") and scope.startswith(p[:-1])) for p in patterns)

    reach: set[object] = {
        i
        for i, route in enumerate(ROUTES)
        if all(grants(s) for s in route.scopes) and all(departments == {v} for _k, v in route.require)
    }
    if any(p in (ADMIN_SCOPE, "satgate:*") for p in patterns):
        reach.add(ADMIN_SCOPE)
    return reach


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(issued=st.lists(issuer_caveat, max_size=4), appended=st.lists(appended_caveat, min_size=1, max_size=4))
def test_appending_never_widens_what_a_token_reaches(issued, appended):
    parent = mint(KEYRING, "acme", issued, attribute_keys=ATTRIBUTES).token
    own_seal = wire.decode(parent).caveats[-1]
    child = append_raw(parent, *(own_seal if raw == b"seal = replay" else raw for raw in appended))
    assert admitted(child) <= admitted(parent) <= granted_by_issuer(issued)


IDENTITY_BUCKET = "5f" * 16


def test_an_issuers_budget_bucket_is_a_bucket_whose_limit_the_ledger_holds():
    token = VERIFIER.verify(mint(KEYRING, "acme", [("budget_bucket", f"{IDENTITY_BUCKET}/8h")]).token)
    (bucket,) = token.buckets
    assert (bucket.bucket_id, bucket.limit, str(bucket.period)) == (IDENTITY_BUCKET, 0, "8h")
    child = VERIFIER.verify(
        delegate(
            mint(KEYRING, "acme", [("budget_bucket", f"{IDENTITY_BUCKET}/8h")]).token, ttl_seconds=60, budget_credits=3
        ).token
    )
    assert child.buckets[0].bucket_id == IDENTITY_BUCKET  # a child still draws on it


def test_a_budget_bucket_a_holder_appends_or_without_a_seal_is_refused():
    """Else a holder who saw another identity's bucket id could drain that identity's budget."""
    own = mint(KEYRING, "acme", [("scope", "api:*")]).token
    assert _refusal(attenuate(own, [("budget_bucket", f"{IDENTITY_BUCKET}/8h")]))[0] == "invalid_signature"
    assert _refusal(append_raw(own, f"budget_bucket = {IDENTITY_BUCKET}/1h".encode()))[0] == "invalid_signature"
    assert _refusal(_unsealed([f"budget_bucket = {IDENTITY_BUCKET}/1h".encode()]))[0] == "invalid_signature"
