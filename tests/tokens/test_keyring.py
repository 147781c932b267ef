import hashlib
import hmac
import json
import os
import stat

import pytest

from satgate.keyring import Keyring, KeyringError, load_keyring, load_or_create_keyring, write_keyring


def rfc5869_hkdf_sha256(ikm: bytes, salt: bytes, info: bytes, length: int) -> bytes:
    """Straight from RFC 5869 §2.2-2.3, independent of the cryptography package."""
    prk = hmac.digest(salt, ikm, hashlib.sha256)
    okm, block, counter = b"", b"", 1
    while len(okm) < length:
        block = hmac.digest(prk, block + info + bytes([counter]), hashlib.sha256)
        okm += block
        counter += 1
    return okm[:length]


def test_tenant_root_key_is_the_spec_hkdf(keyring):
    expected = rfc5869_hkdf_sha256(keyring.keys["k1"], b"satgate-v1", b"tenant:acme", 32)
    assert keyring.tenant_root_key("acme", "k1") == expected
    assert keyring.tenant_root_key("acme", "k1") != keyring.tenant_root_key("acme2", "k1")


def test_created_file_is_0600_and_round_trips(tmp_path):
    path = tmp_path / "state" / "keyring.json"
    created, was_created = load_or_create_keyring(path)
    assert was_created
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    again, was_created = load_or_create_keyring(path)
    assert not was_created
    assert again.keys == created.keys and again.active_kid == "k1"


def test_group_readable_keyring_is_refused(tmp_path, keyring):
    path = tmp_path / "keyring.json"
    write_keyring(path, keyring)
    os.chmod(path, 0o640)
    with pytest.raises(KeyringError, match="must be 0600"):
        load_keyring(path)


@pytest.mark.parametrize(
    ("mode", "accepted"), [(0o440, True), (0o400, True), (0o600, True), (0o460, False), (0o444, False), (0o404, False)]
)
def test_group_read_is_an_explicit_opt_in_for_kubernetes_secrets(tmp_path, keyring, mode, accepted):
    """A Secret volume with fsGroup is 0440 root:<fsGroup>: group read is admitted on request, write or others never."""
    path = tmp_path / "keyring.json"
    write_keyring(path, keyring)
    os.chmod(path, mode)
    if accepted:
        assert load_keyring(path, group_readable=True).keys == keyring.keys
    else:
        with pytest.raises(KeyringError, match="must be 0600 or 0440"):
            load_keyring(path, group_readable=True)


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ({"active_kid": "k2", "keys": {"k1": "A" * 43}}, "active_kid 'k2' is not in 'keys'"),
        ({"active_kid": "k1", "keys": {"k1": "AAAA"}}, "needs >= 32"),
        ({"active_kid": "K1", "keys": {"K1": "A" * 43}}, "kid 'K1'"),
        ({"active_kid": "k1", "keys": {}}, "'keys' is empty"),
        ({"keys": {"k1": "A" * 43}}, "'active_kid' must be a string"),
    ],
)
def test_bad_keyrings_name_the_problem(doc, message):
    with pytest.raises(KeyringError, match=message):
        Keyring.from_json(json.dumps(doc))


def test_missing_and_invalid_json(tmp_path):
    with pytest.raises(KeyringError, match="does not exist"):
        load_keyring(tmp_path / "nope.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    bad.chmod(0o600)
    with pytest.raises(KeyringError, match="not valid JSON"):
        load_keyring(bad)


def test_keyring_file_reloads_and_keeps_the_last_good_one(tmp_path, keyring):
    from satgate.keyring import KeyringFile, rotate

    path = tmp_path / "keyring.json"
    write_keyring(path, keyring)
    watched = KeyringFile(path)
    seen = []
    watched.on_change(seen.append)
    assert not watched.reload_if_changed()
    write_keyring(path, rotate(keyring))
    assert watched.reload_if_changed()
    assert watched.current.active_kid == "k2" and seen[-1].active_kid == "k2"
    path.write_text("{broken")  # a bad edit
    assert not watched.reload_if_changed()
    assert watched.current.active_kid == "k2"


def test_rotate_and_retire_rules(keyring):
    from satgate.keyring import retire, rotate

    rotated = rotate(keyring)
    assert (rotated.active_kid, sorted(rotated.keys)) == ("k2", ["k1", "k2"])
    assert rotated.keys["k1"] == keyring.keys["k1"]
    with pytest.raises(KeyringError, match="already exists"):
        rotate(rotated, "k1")
    with pytest.raises(KeyringError, match="is active"):
        retire(rotated, "k2")
    assert sorted(retire(rotated, "k1").keys) == ["k2"]


def test_verifier_forgets_cached_verdicts_when_keys_change(keyring):
    from satgate.keyring import retire, rotate
    from satgate.tokens.mint import mint
    from satgate.tokens.verify import TokenRejected, TokenVerifier

    token = mint(keyring, "acme").token
    verifier = TokenVerifier(keyring)
    verifier.verify(token)  # cached
    verifier.use_keyring(retire(rotate(keyring), "k1"))
    with pytest.raises(TokenRejected):
        verifier.verify(token)
