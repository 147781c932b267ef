"""Verification and the attacks on it: forged signatures, tampered or unknown caveats, wrong keys."""

import base64

import pytest

from satgate.keyring import Keyring
from satgate.tokens import wire
from satgate.tokens.chain import chain_signatures, extend_signature
from satgate.tokens.identifier import TokenIdentifier
from satgate.tokens.mint import attenuate, mint
from satgate.tokens.verify import TokenRejected, TokenVerifier


def rejected(verifier: TokenVerifier, token: str) -> str:
    with pytest.raises(TokenRejected) as info:
        verifier.verify(token)
    return info.value.denial.error


@pytest.fixture
def verifier(keyring):
    return TokenVerifier(keyring, attribute_keys=["department"])


def test_minted_token_verifies(keyring, verifier):
    minted = mint(
        keyring, "acme", [("scope", "api:read"), ("budget", "10"), ("department", "eng")], attribute_keys=["department"]
    )
    token = verifier.verify(minted.token)
    assert token.tenant == "acme"
    assert token.token_id == minted.identifier.token_id
    assert token.revocation_ids == (minted.identifier.token_id,)
    assert [b.limit for b in token.buckets] == [10]
    assert token.attribute("department") == "eng"


def test_bucket_id_is_the_signature_after_the_budget_caveat(keyring, verifier):
    minted = mint(keyring, "acme", [("scope", "api:read"), ("budget", "10"), ("label", "x")])
    ident = minted.identifier.encode()
    sigs = chain_signatures(
        keyring.tenant_root_key("acme", "k1"), ident, [b"scope = api:read", b"budget = 10", b"label = x"]
    )
    assert verifier.verify(minted.token).buckets[0].bucket_id == sigs[2].hex()[:32]


def test_flipped_signature_bit_is_rejected(keyring, verifier):
    mac = wire.decode(mint(keyring, "acme", [("budget", "10")]).token)
    forged = bytes([mac.signature[0] ^ 1]) + mac.signature[1:]
    assert (
        rejected(verifier, wire.encode(wire.WireMacaroon(mac.identifier, mac.caveats, forged))) == "invalid_signature"
    )


def test_tampered_caveat_value_is_rejected(keyring, verifier):
    mac = wire.decode(mint(keyring, "acme", [("budget", "10")]).token)
    tampered = wire.WireMacaroon(mac.identifier, (b"budget = 10000",), mac.signature)
    assert rejected(verifier, wire.encode(tampered)) == "invalid_signature"


def test_removed_caveat_is_rejected(keyring, verifier):
    mac = wire.decode(mint(keyring, "acme", [("scope", "api:read"), ("budget", "10")]).token)
    for keep in ((mac.caveats[0],), (mac.caveats[1],), ()):
        assert (
            rejected(verifier, wire.encode(wire.WireMacaroon(mac.identifier, keep, mac.signature)))
            == "invalid_signature"
        )


def test_reordered_caveats_are_rejected(keyring, verifier):
    mac = wire.decode(mint(keyring, "acme", [("scope", "api:read"), ("budget", "10")]).token)
    swapped = wire.WireMacaroon(mac.identifier, mac.caveats[::-1], mac.signature)
    assert rejected(verifier, wire.encode(swapped)) == "invalid_signature"


def test_identifier_swap_is_rejected(keyring, verifier):
    """Moving a chain onto another token id (e.g. to dodge a revocation) breaks the signature."""
    mac = wire.decode(mint(keyring, "acme", [("budget", "10")]).token)
    other = TokenIdentifier.new("acme", "k1").encode()
    assert rejected(verifier, wire.encode(wire.WireMacaroon(other, mac.caveats, mac.signature))) == "invalid_signature"


def test_token_of_another_tenant_key_is_rejected(keyring, verifier):
    """A token signed with tenant B's root but claiming tenant A."""
    ident = TokenIdentifier.new("tenant-a", "k1").encode()
    sig = chain_signatures(keyring.tenant_root_key("tenant-b", "k1"), ident, [])[-1]
    assert rejected(verifier, wire.encode(wire.WireMacaroon(ident, (), sig))) == "invalid_signature"


def test_unknown_kid_and_unknown_tenant(keyring):
    other = Keyring.generate("k2")
    assert rejected(TokenVerifier(keyring), mint(other, "acme").token) == "unknown_key"
    assert rejected(TokenVerifier(keyring, tenants=["acme"]), mint(keyring, "globex").token) == "unknown_key"


def test_key_rotation_old_kid_verifies_until_removed(keyring):
    old_token = mint(keyring, "acme").token
    rotated = Keyring(active_kid="k2", keys={**keyring.keys, "k2": b"n" * 32})
    new_token = mint(rotated, "acme").token
    assert TokenVerifier(rotated).verify(new_token).identifier.kid == "k2"
    assert TokenVerifier(rotated).verify(old_token).identifier.kid == "k1"
    retired = Keyring(active_kid="k2", keys={"k2": b"n" * 32})
    assert rejected(TokenVerifier(retired), old_token) == "unknown_key"


def _signed_with_raw_caveat(keyring, raw: bytes) -> str:
    ident = TokenIdentifier.new("acme", "k1").encode()
    sigs = chain_signatures(keyring.tenant_root_key("acme", "k1"), ident, [raw])
    return wire.encode(wire.WireMacaroon(ident, (raw,), sigs[-1]))


@pytest.mark.parametrize(
    "raw",
    [
        b"colour = red",  # unknown key
        b"budget=10",  # grammar: spaces
        b"budget = 10 ",  # trailing space
        b"budget = ten",
        b"expires = tomorrow",
        b"label = a\x07b",
        b"\xff = 1",
        b"time < 2030-01-01",  # libmacaroons-style predicate
    ],
)
def test_properly_signed_but_unintelligible_caveats_fail_closed(keyring, verifier, raw):
    assert rejected(verifier, _signed_with_raw_caveat(keyring, raw)) == "malformed_token"


def test_declared_attribute_keys_are_accepted_only_when_declared(keyring):
    token = _signed_with_raw_caveat(keyring, b"department = eng")
    verified = TokenVerifier(keyring, attribute_keys=["department"]).verify(token)
    assert [(a.key, a.value) for a in verified.attributes] == [("department", "eng")]
    assert verified.attribute("department") is None  # unsealed: it restricts, but grants nothing
    sealed = mint(keyring, "acme", [("department", "eng")], attribute_keys=["department"]).token
    assert TokenVerifier(keyring, attribute_keys=["department"]).verify(sealed).attribute("department") == "eng"
    assert rejected(TokenVerifier(keyring), token) == "malformed_token"


def test_attenuated_child_keeps_parent_buckets_and_adds_its_own(keyring, verifier):
    parent = mint(keyring, "acme", [("scope", "api:*"), ("budget", "10")]).token
    child = attenuate(parent, [("budget", "3"), ("scope", "api:read")])
    p, c = verifier.verify(parent), verifier.verify(child)
    assert c.buckets[0] == p.buckets[0]
    assert [b.limit for b in c.buckets] == [10, 3]
    assert c.token_id == p.token_id
    assert c.fingerprint != p.fingerprint


def test_attenuation_refuses_caveats_the_verifier_would_reject(keyring):
    parent = mint(keyring, "acme").token
    with pytest.raises(ValueError, match="unknown caveat"):
        attenuate(parent, [("colour", "red")])
    with pytest.raises(ValueError, match="budget"):
        attenuate(parent, [("budget", "0")])


def test_appending_a_caveat_without_the_signature_is_rejected(keyring, verifier):
    mac = wire.decode(mint(keyring, "acme", [("budget", "10")]).token)
    forged = wire.WireMacaroon(mac.identifier, (*mac.caveats, b"label = x"), mac.signature)
    assert rejected(verifier, wire.encode(forged)) == "invalid_signature"
    honest = wire.WireMacaroon(mac.identifier, forged.caveats, extend_signature(mac.signature, b"label = x"))
    assert verifier.verify(wire.encode(honest)).labels == ("x",)


def test_delegation_depth(keyring, verifier):
    parent = mint(keyring, "acme", [("max_delegation_depth", "1")]).token
    one = attenuate(parent, [("delegation", "a" * 32)])
    assert verifier.verify(one).revocation_ids[1:] == ("a" * 32,)
    two = attenuate(one, [("delegation", "b" * 32)])
    with pytest.raises(TokenRejected) as info:
        verifier.verify(two)
    assert info.value.denial.caveat == "max_delegation_depth"
    # Delegations before the limit do not count against it.
    late_limit = attenuate(
        attenuate(mint(keyring, "acme").token, [("delegation", "c" * 32)]), [("max_delegation_depth", "0")]
    )
    assert verifier.verify(late_limit).revocation_ids[1:] == ("c" * 32,)


def test_junk_is_malformed(verifier):
    for junk in ("", "not a token", "AgE", base64.urlsafe_b64encode(b"\x02\x00\x00").decode()):
        assert rejected(verifier, junk) == "malformed_token"


def test_a_refused_token_is_refused_again_for_a_lookup(keyring, monkeypatch):
    import satgate.tokens.verify as verify_module

    forged = mint(Keyring(active_kid="k1", keys={"k1": b"f" * 32}), "acme", [("budget", "5")]).token
    verifier = TokenVerifier(keyring, refusal_cache_size=2)
    chains = []
    real_chain = verify_module.chain_signatures
    monkeypatch.setattr(verify_module, "chain_signatures", lambda *a: chains.append(1) or real_chain(*a))
    for _ in range(5):
        assert rejected(verifier, forged) == "invalid_signature"
    assert len(chains) == 1
    others = [mint(Keyring(active_kid="k1", keys={"k1": bytes([n]) * 32}), "acme").token for n in range(3)]
    for other in others:  # bounded: the oldest refusal gives way
        rejected(verifier, other)
    rejected(verifier, forged)
    assert len(chains) == 5


def test_a_keyring_change_forgets_refusals(keyring):
    rotated = Keyring(active_kid="k2", keys={**keyring.keys, "k2": b"r" * 32})
    token = mint(rotated, "acme").token
    verifier = TokenVerifier(keyring)
    assert rejected(verifier, token) == "unknown_key"
    verifier.use_keyring(rotated)
    assert verifier.verify(token).identifier.kid == "k2"
