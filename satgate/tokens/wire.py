"""Strict macaroon v2 binary wire format, base64url-encoded (SPEC: Tokens / Wire).

The verify path parses with a lean canonical v2 reader (`_parse`): it accepts exactly the bytes that pymacaroons
deserialises and re-encodes unchanged — one location, one identifier, first-party caveats, a 32-byte signature,
canonical varints, nothing after — which rejects v1, JSON, trailing data and non-canonical encodings alike.
pymacaroons stays the reference (`decode_with_pymacaroons`, which the tests compare with on every token
hypothesis builds and on mutations of them) and does all encoding.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass

from pymacaroons import MACAROON_V2, Macaroon
from pymacaroons.caveat import Caveat
from pymacaroons.serializers.binary_serializer import BinarySerializer

# Caps: the length is checked before decoding and the caveat count as the parser walks, so a forged giant costs a
# length check and at most MAX_CAVEATS fields. 16 delegation steps of ~6 caveats each, plus the issuer's, fit well
# inside both.
MAX_TOKEN_CHARS = 8 * 1024
MAX_CAVEATS = 128
LOCATION = "satgate"
_B64URL_RE = re.compile(r"[A-Za-z0-9_-]+={0,2}")
_V2_VERSION_BYTE = 0x02
_SIGNATURE_BYTES = 32
_FIELD_EOS = 0
_FIELD_LOCATION, _FIELD_IDENTIFIER, _FIELD_VID, _FIELD_SIGNATURE = 1, 2, 4, 6
_serializer = BinarySerializer()


class MalformedToken(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class WireMacaroon:
    identifier: bytes
    caveats: tuple[bytes, ...]
    signature: bytes


def decode(token: str) -> WireMacaroon:
    if len(token) > MAX_TOKEN_CHARS:
        raise MalformedToken(f"token longer than {MAX_TOKEN_CHARS} characters")
    if not _B64URL_RE.fullmatch(token):
        raise MalformedToken("token is not base64url")
    unpadded = token.rstrip("=")
    try:
        raw = base64.urlsafe_b64decode(unpadded + "=" * (-len(unpadded) % 4))
    except (binascii.Error, ValueError) as exc:
        raise MalformedToken("token is not base64url") from exc
    return _parse(raw)


def _varint(raw: bytes, pos: int) -> tuple[int, int]:
    """A canonical unsigned varint at `pos` and the position after it (what pymacaroons would write back)."""
    value, shift, start = 0, 0, pos
    while pos < len(raw):
        byte = raw[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            if byte == 0 and pos - start > 1:
                break  # a trailing zero group: not how the value is written
            return value, pos
        shift += 7
        if shift > 63:
            break
    raise MalformedToken("token is not a valid macaroon v2 (bad length encoding)")


def _field(raw: bytes, pos: int, field_type: int) -> tuple[bytes, int]:
    if pos + 1 >= len(raw) or raw[pos] != field_type:
        raise MalformedToken("token is not a valid macaroon v2 (unexpected field)")
    length = raw[pos + 1]
    if length < 0x80:  # one-byte length: every caveat of ours, and the signature
        pos += 2
    else:
        length, pos = _varint(raw, pos + 1)
    if pos + length > len(raw):
        raise MalformedToken("token is not a valid macaroon v2 (field data extends past the end)")
    return raw[pos : pos + length], pos + length


def _end_of_section(raw: bytes, pos: int) -> int:
    if pos >= len(raw):
        raise MalformedToken("token is not a valid macaroon v2 (section extends past the end)")
    if raw[pos] == _FIELD_VID:
        raise MalformedToken("third-party caveats are not supported")
    if raw[pos] != _FIELD_EOS:
        raise MalformedToken("token is not a valid macaroon v2 (unexpected field)")
    return pos + 1


def _parse(raw: bytes) -> WireMacaroon:
    if not raw or raw[0] != _V2_VERSION_BYTE:
        raise MalformedToken("token is not a macaroon v2 binary")
    location, pos = _field(raw, 1, _FIELD_LOCATION)  # pymacaroons always writes the macaroon's location
    try:
        location.decode("utf-8")
    except UnicodeDecodeError:
        raise MalformedToken("token location is not UTF-8") from None
    identifier, pos = _field(raw, pos, _FIELD_IDENTIFIER)
    pos = _end_of_section(raw, pos)
    caveats: list[bytes] = []
    while pos < len(raw) and raw[pos] != _FIELD_EOS:
        if len(caveats) == MAX_CAVEATS:  # the walk stops here: a forged giant costs the cap, not its length
            raise MalformedToken(f"token has more than {MAX_CAVEATS} caveats")
        if raw[pos] == _FIELD_LOCATION:  # only third-party caveats carry a location
            raise MalformedToken("third-party caveats are not supported")
        caveat, pos = _field(raw, pos, _FIELD_IDENTIFIER)
        pos = _end_of_section(raw, pos)
        caveats.append(caveat)
    if pos >= len(raw):
        raise MalformedToken("token is not a valid macaroon v2 (no signature)")
    signature, pos = _field(raw, pos + 1, _FIELD_SIGNATURE)
    if len(signature) != _SIGNATURE_BYTES:
        raise MalformedToken("token signature is not 32 bytes")
    if pos != len(raw):
        raise MalformedToken("token is not canonical macaroon v2 binary (trailing or non-canonical data)")
    return WireMacaroon(identifier=identifier, caveats=tuple(caveats), signature=signature)


def decode_with_pymacaroons(raw: bytes) -> WireMacaroon:
    """The reference: pymacaroons deserialises, and the bytes must re-encode to exactly what was presented."""
    try:
        macaroon = _serializer.deserialize_raw(raw)
        canonical = _serializer.serialize_raw(macaroon)
    except Exception as exc:  # pymacaroons raises bare Exception on truncated varints
        raise MalformedToken(f"token is not a valid macaroon v2 ({exc})") from exc
    if canonical != raw:
        raise MalformedToken("token is not canonical macaroon v2 binary (trailing or non-canonical data)")
    signature = binascii.unhexlify(macaroon.signature_bytes)
    if len(signature) != _SIGNATURE_BYTES:
        raise MalformedToken("token signature is not 32 bytes")
    caveats = []
    for caveat in macaroon.caveats:
        if caveat.verification_key_id is not None or caveat.location is not None:  # an empty one too
            raise MalformedToken("third-party caveats are not supported")
        caveats.append(caveat.caveat_id_bytes)
    return WireMacaroon(identifier=macaroon.identifier_bytes, caveats=tuple(caveats), signature=signature)


def encode(wire: WireMacaroon) -> str:
    macaroon = Macaroon(location=LOCATION, identifier=wire.identifier, version=MACAROON_V2)
    # Plain Caveat objects: pymacaroons would re-sign on add_first_party_caveat; the chain signs here.
    macaroon.caveats = [Caveat(caveat_id=raw, version=MACAROON_V2) for raw in wire.caveats]
    macaroon.signature = binascii.hexlify(wire.signature)
    return _serializer.serialize(macaroon)
