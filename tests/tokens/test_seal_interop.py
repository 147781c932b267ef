"""The seal as an independent implementation computes it: the npm `macaroon` package and node's crypto mint a
sealed token from the SPEC's words alone (tests/tokens/interop/seal.mjs); our verifier must agree."""

import base64
import binascii
import json
import shutil
import subprocess
from pathlib import Path

import pytest
from pymacaroons.serializers.json_serializer import JsonSerializer

from satgate.keyring import Keyring
from satgate.tokens import wire
from satgate.tokens.identifier import TokenIdentifier
from satgate.tokens.verify import TokenRejected, TokenVerifier

INTEROP = Path(__file__).parent / "interop"
KEYRING = Keyring(active_kid="k1", keys={"k1": bytes(range(32))})


def minted_by_js(issued: list[str], appended: list[str] = ()) -> str:
    if shutil.which("node") is None:
        pytest.skip("node is not installed: the independent implementation is the npm macaroon package")
    assert (INTEROP / "node_modules").is_dir(), "run ./dev test (it runs npm ci in tests/tokens/interop)"
    doc = {
        "master": base64.urlsafe_b64encode(KEYRING.keys["k1"]).decode().rstrip("="),
        "tenant": "acme",
        "kid": "k1",
        "token_id": TokenIdentifier.new("acme", "k1").token_id,
        "issued": issued,
        "appended": list(appended),
    }
    result = subprocess.run(
        ["node", str(INTEROP / "seal.mjs")],
        input=json.dumps(doc),
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0, result.stderr
    mac = JsonSerializer().deserialize(result.stdout)  # its v2 JSON, re-encoded as the v2 binary we accept
    caveats = tuple(c.caveat_id_bytes for c in mac.caveats)
    return wire.encode(wire.WireMacaroon(mac.identifier_bytes, caveats, binascii.unhexlify(mac.signature_bytes)))


def test_a_seal_computed_by_another_implementation_grants():
    token = TokenVerifier(KEYRING, attribute_keys=["department"]).verify(
        minted_by_js(["scope = api:read,satgate:admin", "department = eng", "budget = 5"])
    )
    assert [c.patterns for c in token.grants.scopes] == [("api:read", "satgate:admin")]
    assert token.attribute("department") == "eng"
    assert [b.limit for b in token.buckets] == [5]


def test_what_it_appends_after_the_seal_grants_nothing():
    token = TokenVerifier(KEYRING, attribute_keys=["department"]).verify(
        minted_by_js(["budget = 5"], ["scope = satgate:admin", "department = eng"])
    )
    assert token.grants.scopes == () and token.attribute("department") is None


@pytest.mark.parametrize("appended", [["seal = " + "0" * 32], ["scope = x", "seal = " + "ab" * 16]])
def test_a_second_or_forged_seal_from_it_is_refused(appended):
    with pytest.raises(TokenRejected) as info:
        TokenVerifier(KEYRING).verify(minted_by_js(["budget = 5"], appended))
    assert info.value.denial.error == "invalid_signature"


def test_a_seal_under_another_tenants_key_is_refused():
    other = Keyring(active_kid="k1", keys={"k1": bytes(range(1, 33))})
    with pytest.raises(TokenRejected):
        TokenVerifier(other).verify(minted_by_js(["budget = 5"]))
