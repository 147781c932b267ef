"""Strict macaroon v2 binary wire format, base64url-encoded (SPEC: Tokens / Wire).

pymacaroons does the (de)serialisation; strictness comes from demanding that the bytes re-encode to
exactly what was presented, which rejects v1, JSON, trailing data and non-canonical varints alike.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass

from pymacaroons import MACAROON_V2, Macaroon
from pymacaroons.caveat import Caveat
from pymacaroons.serializers.binary_serializer import BinarySerializer

# Caps checked before the bytes are handed to the decoder, so a forged giant costs a length check and a short
# scan. 16 delegation steps of ~6 caveats each, plus the issuer's, fit well inside both.
MAX_TOKEN_CHARS = 8 * 1024
MAX_CAVEATS = 128
LOCATION = "satgate"
_B64URL_RE = re.compile(r"[A-Za-z0-9_-]+={0,2}")
_V2_VERSION_BYTE = 0x02
_SIGNATURE_BYTES = 32
_FIELD_EOS = 0
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
    try:
        raw = base64.urlsafe_b64decode(token.rstrip("=") + "=" * (-len(token.rstrip("=")) % 4))
    except (binascii.Error, ValueError) as exc:
        raise MalformedToken("token is not base64url") from exc
    if not raw or raw[0] != _V2_VERSION_BYTE:
        raise MalformedToken("token is not a macaroon v2 binary")
    if _sections_at_least(raw, MAX_CAVEATS + 3):  # one ends the identifier, one the caveats; then one too many
        raise MalformedToken(f"token has more than {MAX_CAVEATS} caveats")
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
        if caveat.verification_key_id or caveat.location:
            raise MalformedToken("third-party caveats are not supported")
        caveats.append(caveat.caveat_id_bytes)
    return WireMacaroon(identifier=macaroon.identifier_bytes, caveats=tuple(caveats), signature=signature)


def _sections_at_least(raw: bytes, limit: int) -> bool:
    """Whether the v2 field stream holds `limit` end-of-section markers, walking field headers only (type and
    length varints; data is skipped) and stopping at the limit. Malformed streams are left to the decoder."""
    sections, pos, end = 0, 1, len(raw)
    while pos < end:
        field_type = raw[pos]
        pos += 1
        if field_type == _FIELD_EOS:
            sections += 1
            if sections >= limit:
                return True
            continue
        length, shift = 0, 0
        while pos < end and shift < 64:
            byte = raw[pos]
            pos += 1
            length |= (byte & 0x7F) << shift
            shift += 7
            if not byte & 0x80:
                break
        pos += length
    return False


def encode(wire: WireMacaroon) -> str:
    macaroon = Macaroon(location=LOCATION, identifier=wire.identifier, version=MACAROON_V2)
    # Plain Caveat objects: pymacaroons would re-sign on add_first_party_caveat; the chain signs here.
    macaroon.caveats = [Caveat(caveat_id=raw, version=MACAROON_V2) for raw in wire.caveats]
    macaroon.signature = binascii.hexlify(wire.signature)
    return _serializer.serialize(macaroon)
