"""The chain against public vectors published by other macaroon implementations (rust-macaroon,
jmacaroons, libmacaroons' README), so a wrong HMAC construction cannot agree with itself."""

import base64

from satgate.tokens import wire
from satgate.tokens.chain import chain_signatures, derive_signing_key, extend_signature

# macaroon v2 binary, location http://example.org/, identifier "keyid", root key "this is the key"
V2_TWO_CAVEATS = (
    "AgETaHR0cDovL2V4YW1wbGUub3JnLwIFa2V5aWQAAhRhY2NvdW50ID0gMzczNTkyODU1OQACDHVzZXIgPSBhbGljZQAABiBL6WfN"
    "HqDGsmuvakqU7psFsViG2guoXoxCqTyNDhJe_A=="
)
SIG_ONE_CAVEAT = "f54807f6dc6edf88bf0f7306b3822562a362533dbf7339ba61765da4bd259d87"
SIG_TWO_CAVEATS = "4be967cd1ea0c6b26baf6a4a94ee9b05b15886da0ba85e8c42a93c8d0e125efc"


def test_libmacaroons_vector_one_caveat():
    sigs = chain_signatures(b"this is the key", b"keyid", [b"account = 3735928559"])
    assert sigs[-1].hex() == SIG_ONE_CAVEAT


def test_libmacaroons_vector_two_caveats_from_the_v2_wire():
    mac = wire.decode(V2_TWO_CAVEATS)
    assert mac.identifier == b"keyid"
    assert mac.caveats == (b"account = 3735928559", b"user = alice")
    assert mac.signature.hex() == SIG_TWO_CAVEATS
    sigs = chain_signatures(b"this is the key", mac.identifier, mac.caveats)
    assert sigs[-1] == mac.signature
    assert sigs[1].hex() == SIG_ONE_CAVEAT  # per-caveat signatures are the chain's prefixes


def test_libmacaroons_readme_example():
    key = b"this is our super secret key; only we should know it"
    sigs = chain_signatures(key, b"we used our secret key", [b"account = 3735928559"])
    assert sigs[0].hex() == "e3d9e02908526c4c0039ae15114115d97fdd68bf2ba379b342aaf0f617d0552f"
    assert sigs[1].hex() == "1efe4763f290dbce0c1d08477367e11f4eee456a64933cf662d79772dbb82128"


def test_attenuation_needs_only_the_signature():
    sigs = chain_signatures(b"root", b"id", [b"a = 1"])
    assert extend_signature(sigs[-1], b"b = 2") == chain_signatures(b"root", b"id", [b"a = 1", b"b = 2"])[-1]


def test_signing_key_is_hmac_of_the_generator_string():
    # HMAC zero-pads short keys, so libmacaroons' padded 32-byte generator gives the same key.
    padded = b"macaroons-key-generator".ljust(32, b"\0")
    import hashlib
    import hmac

    assert derive_signing_key(b"k") == hmac.digest(padded, b"k", hashlib.sha256)


def test_vector_reencodes_with_our_location():
    mac = wire.decode(V2_TWO_CAVEATS)
    again = wire.decode(wire.encode(mac))
    assert again == mac
    raw = base64.urlsafe_b64decode(wire.encode(mac) + "=" * (-len(wire.encode(mac)) % 4))
    assert raw[0] == 2  # v2 binary
