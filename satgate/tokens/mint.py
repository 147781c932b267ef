"""Minting (needs the keyring) and offline attenuation (needs only the token)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from satgate.caveats import CaveatSyntaxError, Seal, format_caveat, parse_caveat
from satgate.caveats.seal import seal_value
from satgate.keyring import Keyring
from satgate.tokens import wire
from satgate.tokens.chain import chain_signatures, extend_signature
from satgate.tokens.identifier import TokenIdentifier

CaveatSpec = tuple[str, str]


@dataclass(frozen=True, slots=True)
class MintedToken:
    token: str
    identifier: TokenIdentifier


def _encode_caveats(caveats: Iterable[CaveatSpec], attribute_keys: Iterable[str]) -> list[bytes]:
    keys = frozenset(attribute_keys)
    encoded = []
    for key, value in caveats:
        if key == Seal.key:
            raise CaveatSyntaxError("caveat 'seal' is placed by the issuer when it mints, never given")
        raw = format_caveat(key, value)
        parse_caveat(raw, keys)  # refuse to sign what the verifier would reject
        encoded.append(raw)
    return encoded


def mint(
    keyring: Keyring,
    tenant: str,
    caveats: Iterable[CaveatSpec] = (),
    *,
    attribute_keys: Iterable[str] = (),
    kid: str | None = None,
) -> MintedToken:
    """A token whose caveats are the issuer's, sealed (SPEC v2.1): they are its grants."""
    ident = TokenIdentifier.new(tenant, kid or keyring.active_kid)
    raw_caveats = _encode_caveats(caveats, attribute_keys)
    identifier = ident.encode()
    sigs = chain_signatures(keyring.tenant_root_key(ident.tenant, ident.kid), identifier, raw_caveats)
    seal = format_caveat(Seal.key, seal_value(keyring.seal_key(ident.tenant, ident.kid), sigs[-1]))
    signature = extend_signature(sigs[-1], seal)
    token = wire.encode(wire.WireMacaroon(identifier=identifier, caveats=(*raw_caveats, seal), signature=signature))
    return MintedToken(token=token, identifier=ident)


def attenuate(token: str, caveats: Iterable[CaveatSpec], *, attribute_keys: Iterable[str] = ()) -> str:
    """Append caveats. Attenuation only narrows: every caveat already present still has to hold, and what it
    appends comes after the seal, so it grants nothing."""
    mac = wire.decode(token)
    signature = mac.signature
    added = _encode_caveats(caveats, attribute_keys)
    for raw in added:
        signature = extend_signature(signature, raw)
    return wire.encode(wire.WireMacaroon(mac.identifier, mac.caveats + tuple(added), signature))
