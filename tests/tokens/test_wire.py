"""Strict v2 parsing: only canonical macaroon v2 binary in base64url is a token."""

import base64
import binascii
import contextlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pymacaroons import MACAROON_V1, MACAROON_V2, Macaroon
from pymacaroons.caveat import Caveat
from pymacaroons.serializers.binary_serializer import BinarySerializer

from satgate.tokens import wire


def b64(raw: bytes, pad: bool = False) -> str:
    text = base64.urlsafe_b64encode(raw).decode()
    return text if pad else text.rstrip("=")


def sample() -> wire.WireMacaroon:
    return wire.WireMacaroon(b"sg1:acme:k1:" + b"0" * 32, (b"scope = api:read", b"budget = 5"), bytes(range(32)))


def test_round_trip_with_and_without_padding():
    token = wire.encode(sample())
    assert "=" not in token
    assert wire.decode(token) == sample()
    raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    assert wire.decode(b64(raw, pad=True)) == sample()


def test_v1_tokens_are_refused():
    v1 = Macaroon(location="x", identifier="id", key="k", version=MACAROON_V1)
    with pytest.raises(wire.MalformedToken, match="v2"):
        wire.decode(v1.serialize())


def test_json_tokens_are_refused():
    js = Macaroon(location="x", identifier="id", key="k").serialize(
        serializer=__import__("pymacaroons").serializers.JsonSerializer()
    )
    with pytest.raises(wire.MalformedToken):
        wire.decode(js)
    with pytest.raises(wire.MalformedToken):
        wire.decode(b64(js.encode()))


def test_standard_base64_alphabet_is_refused():
    raw = base64.urlsafe_b64decode(wire.encode(sample()) + "==")
    standard = base64.b64encode(raw).decode()
    if "+" in standard or "/" in standard:
        with pytest.raises(wire.MalformedToken, match="base64url"):
            wire.decode(standard)
    with pytest.raises(wire.MalformedToken, match="base64url"):
        wire.decode("abc+/def")


def test_trailing_bytes_are_refused():
    raw = base64.urlsafe_b64decode(wire.encode(sample()) + "==")
    with pytest.raises(wire.MalformedToken, match="canonical"):
        wire.decode(b64(raw + b"\x00"))


def test_truncated_tokens_are_refused():
    raw = base64.urlsafe_b64decode(wire.encode(sample()) + "==")
    for cut in range(1, len(raw)):
        with pytest.raises(wire.MalformedToken):
            wire.decode(b64(raw[:cut]))


def test_third_party_caveats_fail_closed():
    m = Macaroon(location="satgate", identifier="sg1:acme:k1:" + "0" * 32, key="root")
    m.add_third_party_caveat("https://auth.example", "caveat key", "third party id")
    with pytest.raises(wire.MalformedToken):
        wire.decode(m.serialize())


def test_oversized_tokens_are_refused_before_decoding():
    with pytest.raises(wire.MalformedToken, match="longer than"):
        wire.decode("A" * (wire.MAX_TOKEN_CHARS + 1))


@settings(max_examples=400)
@given(st.binary(max_size=300))
def test_arbitrary_bytes_only_ever_raise_malformed(raw):
    for text in (b64(raw), b64(b"\x02" + raw)):
        try:
            decoded = wire.decode(text)
        except wire.MalformedToken:
            continue
        assert wire.decode(wire.encode(decoded)) == decoded


@settings(max_examples=200)
@given(st.text(max_size=200))
def test_arbitrary_text_only_ever_raises_malformed(text):
    with contextlib.suppress(wire.MalformedToken):
        wire.decode(text)


@given(
    identifier=st.binary(min_size=1, max_size=80),
    caveats=st.lists(st.binary(min_size=1, max_size=60), max_size=6),
    signature=st.binary(min_size=32, max_size=32),
)
def test_any_first_party_macaroon_round_trips(identifier, caveats, signature):
    mac = wire.WireMacaroon(identifier, tuple(caveats), signature)
    assert wire.decode(wire.encode(mac)) == mac


def test_too_many_caveats_are_refused_where_the_walk_passes_the_cap():
    """The parser stops at the cap: what follows the 129th caveat is never read (here: no signature at all)."""
    raw = wire.encode(
        wire.WireMacaroon(b"sg1:acme:k1:" + b"0" * 32, (b"label = x",) * (wire.MAX_CAVEATS + 1), bytes(32))
    )
    assert len(raw) <= wire.MAX_TOKEN_CHARS  # the count alone refuses it
    truncated = base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4))[:-40]  # cut inside the signature field
    with pytest.raises(wire.MalformedToken, match=f"more than {wire.MAX_CAVEATS} caveats"):
        wire.decode(base64.urlsafe_b64encode(truncated).decode().rstrip("="))


def test_the_caveat_cap_itself_is_accepted():
    at_cap = wire.WireMacaroon(b"sg1:acme:k1:" + b"0" * 32, (b"label = x",) * wire.MAX_CAVEATS, bytes(32))
    assert wire.decode(wire.encode(at_cap)) == at_cap


@given(caveats=st.lists(st.binary(min_size=1, max_size=40), max_size=wire.MAX_CAVEATS + 8))
def test_the_caveat_cap_refuses_exactly_the_tokens_over_it(caveats):
    mac = wire.WireMacaroon(b"id", tuple(caveats), bytes(32))
    text = wire.encode(mac)
    if len(caveats) > wire.MAX_CAVEATS:
        with pytest.raises(wire.MalformedToken):
            wire.decode(text)
    elif len(text) <= wire.MAX_TOKEN_CHARS:
        assert wire.decode(text) == mac


# ------------------------------------------------------------------ the lean parser agrees with pymacaroons
def outcome(parse, raw: bytes):
    try:
        return ("accepted", parse(raw))
    except wire.MalformedToken:
        return ("refused",)


def agree(raw: bytes) -> None:
    assert outcome(wire._parse, raw) == outcome(wire.decode_with_pymacaroons, raw), raw


_serializer = BinarySerializer()
_caveat = st.one_of(
    st.builds(lambda cid: Caveat(caveat_id=cid, version=MACAROON_V2), st.binary(max_size=40)),
    st.builds(  # third party: a verification key id, sometimes a location; always refused
        lambda cid, vid, loc: Caveat(caveat_id=cid, verification_key_id=vid, location=loc, version=MACAROON_V2),
        st.binary(max_size=20),
        st.binary(max_size=20),
        st.one_of(st.none(), st.text(max_size=8)),
    ),
)


@st.composite
def pymacaroons_v2(draw) -> bytes:
    macaroon = Macaroon(
        location=draw(st.one_of(st.none(), st.text(max_size=20))),
        identifier=draw(st.binary(max_size=60)),
        version=MACAROON_V2,
    )
    macaroon.caveats = draw(st.lists(_caveat, max_size=5))
    macaroon.signature = binascii.hexlify(draw(st.binary(min_size=30, max_size=34)))
    return _serializer.serialize_raw(macaroon)


@settings(max_examples=600)
@given(raw=pymacaroons_v2())
def test_the_lean_parser_agrees_with_pymacaroons_on_every_macaroon_it_writes(raw):
    agree(raw)


_edit = st.tuples(st.sampled_from(["flip", "insert", "delete"]), st.integers(0, 400), st.integers(0, 255))


@settings(max_examples=1500)
@given(
    raw=pymacaroons_v2(), edits=st.lists(_edit, min_size=1, max_size=3), cut=st.one_of(st.none(), st.integers(0, 400))
)
def test_the_lean_parser_agrees_with_pymacaroons_on_damaged_tokens(raw, edits, cut):
    data = bytearray(raw)
    for kind, where, value in edits:
        position = where % (len(data) + 1)
        if kind == "insert":
            data.insert(position, value)
        elif position < len(data):
            if kind == "flip":
                data[position] = value
            else:
                del data[position]
    if cut is not None:
        data = data[:cut]
    agree(bytes(data))


@settings(max_examples=800)
@given(st.binary(max_size=120))
def test_the_lean_parser_agrees_with_pymacaroons_on_arbitrary_bytes(raw):
    agree(b"\x02" + raw)


def test_an_empty_verification_key_id_is_a_third_party_caveat_on_both_paths():
    """pymacaroons reads an empty VID as b"": it is still a third-party caveat, refused (the reference once took
    it for first-party)."""
    macaroon = Macaroon(location="satgate", identifier=b"id", version=MACAROON_V2)
    macaroon.caveats = [Caveat(caveat_id=b"x", verification_key_id=b"", version=MACAROON_V2)]
    macaroon.signature = binascii.hexlify(bytes(32))
    raw = _serializer.serialize_raw(macaroon)
    assert outcome(wire._parse, raw) == outcome(wire.decode_with_pymacaroons, raw) == ("refused",)
