"""Token verification: wire → identifier → key → HMAC chain → caveats. No side effects."""

from __future__ import annotations

import functools
from collections.abc import Collection
from dataclasses import dataclass

from satgate.caveats import (
    Attribute,
    Budget,
    Caveat,
    CaveatSyntaxError,
    Delegation,
    Denial,
    Expires,
    Label,
    MaxDelegationDepth,
    NotBefore,
    parse_caveat,
)
from satgate.keyring import Keyring
from satgate.ledger.base import Bucket
from satgate.tokens import wire
from satgate.tokens.chain import chain_signatures, signatures_match
from satgate.tokens.identifier import IdentifierError, TokenIdentifier

_BUCKET_HEX = 32


class TokenRejected(Exception):
    def __init__(self, denial: Denial) -> None:
        super().__init__(denial.message)
        self.denial = denial


def _reject(error: str, message: str) -> TokenRejected:
    return TokenRejected(Denial(status=401, error=error, message=message))


@dataclass(frozen=True, slots=True)
class VerifiedToken:
    identifier: TokenIdentifier
    checks: tuple[Caveat, ...]  # caveats judged against each request
    buckets: tuple[Bucket, ...]
    revocation_ids: tuple[str, ...]  # token_id, then every delegation id
    attributes: tuple[Attribute, ...]
    labels: tuple[str, ...]
    caveat_texts: tuple[str, ...]
    fingerprint: str  # unique per attenuation: the final signature, shortened
    expires_at: float | None = None  # the earliest `expires`, for reporting (requests judge the caveats)

    @property
    def tenant(self) -> str:
        return self.identifier.tenant

    @property
    def token_id(self) -> str:
        return self.identifier.token_id

    def attribute(self, key: str) -> str | None:
        """The first value: the one set by the issuer, which holders cannot remove."""
        return next((a.value for a in self.attributes if a.key == key), None)


class TokenVerifier:
    """Verifies tokens against a keyring. Results are cached by exact token string: a cache hit is the
    same bytes that already verified, and per-request caveats are still judged on every request."""

    def __init__(
        self,
        keyring: Keyring,
        attribute_keys: Collection[str] = (),
        tenants: Collection[str] | None = None,
        cache_size: int = 16384,
    ) -> None:
        self._keyring = keyring
        self._attribute_keys = frozenset(attribute_keys)
        self._tenants = frozenset(tenants) if tenants else None
        self.verify = functools.lru_cache(maxsize=cache_size)(self._verify_uncached)

    def use_keyring(self, keyring: Keyring) -> None:
        """After rotation or retirement: cached verdicts were made with the old keys, so they go too."""
        self._keyring = keyring
        self.verify.cache_clear()

    def _verify_uncached(self, token: str) -> VerifiedToken:
        try:
            mac = wire.decode(token)
        except wire.MalformedToken as exc:
            raise _reject("malformed_token", str(exc)) from None
        try:
            ident = TokenIdentifier.parse(mac.identifier)
        except IdentifierError as exc:
            raise _reject("malformed_token", str(exc)) from None
        if self._tenants is not None and ident.tenant not in self._tenants:
            raise _reject("unknown_key", f"unknown tenant {ident.tenant!r}")
        if not self._keyring.has_kid(ident.kid):
            raise _reject("unknown_key", f"unknown key id {ident.kid!r}")
        sigs = chain_signatures(self._keyring.tenant_root_key(ident.tenant, ident.kid), mac.identifier, mac.caveats)
        if not signatures_match(sigs[-1], mac.signature):
            raise _reject("invalid_signature", "token signature does not verify")
        return self._interpret(ident, mac.caveats, sigs)

    def _interpret(self, ident: TokenIdentifier, raw_caveats: tuple[bytes, ...], sigs: list[bytes]) -> VerifiedToken:
        checks: list[Caveat] = []
        buckets: list[Bucket] = []
        revocation_ids = [ident.token_id]
        attributes: list[Attribute] = []
        labels: list[str] = []
        depth_limits: list[tuple[int, MaxDelegationDepth]] = []
        for index, raw in enumerate(raw_caveats):
            try:
                caveat = parse_caveat(raw, self._attribute_keys)
            except CaveatSyntaxError as exc:
                raise _reject("malformed_token", f"invalid caveat: {exc}") from None
            match caveat:
                case Budget(credits=credits):
                    buckets.append(Bucket(bucket_id=sigs[index + 1].hex()[:_BUCKET_HEX], limit=credits))
                case Delegation(delegation_id=delegation_id):
                    revocation_ids.append(delegation_id)
                case MaxDelegationDepth():
                    depth_limits.append((len(revocation_ids), caveat))
                case Attribute():
                    attributes.append(caveat)
                case Label(text=text):
                    labels.append(text)
                case _:
                    checks.append(caveat)
        for delegations_before, limit in depth_limits:
            if limit.exceeded_by(len(revocation_ids) - delegations_before):
                raise TokenRejected(Denial(403, "caveat_failed", "delegation depth exceeded", limit.key))
        # 401-class time caveats first, so an expired token is never reported as merely out of scope.
        checks.sort(key=lambda c: not isinstance(c, Expires | NotBefore))
        return VerifiedToken(
            identifier=ident,
            checks=tuple(checks),
            buckets=tuple(buckets),
            revocation_ids=tuple(revocation_ids),
            attributes=tuple(attributes),
            labels=tuple(labels),
            caveat_texts=tuple(raw.decode() for raw in raw_caveats),
            fingerprint=sigs[-1].hex()[:_BUCKET_HEX],
            expires_at=min((c.at for c in checks if isinstance(c, Expires)), default=None),
        )
