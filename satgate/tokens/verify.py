"""Token verification: wire → identifier → key → HMAC chain → caveats. No side effects."""

from __future__ import annotations

import functools
from collections import OrderedDict
from collections.abc import Collection
from dataclasses import dataclass

from satgate.caveats import (
    Attribute,
    Budget,
    BudgetBucket,
    BudgetWindow,
    Caveat,
    CaveatSyntaxError,
    Delegation,
    Denial,
    Expires,
    Label,
    MaxDelegationDepth,
    NotBefore,
    Scope,
    Seal,
    parse_caveat,
)
from satgate.keyring import Keyring
from satgate.ledger.base import Bucket
from satgate.tokens import wire
from satgate.tokens.chain import chain_signatures, signatures_match
from satgate.tokens.grants import NO_GRANTS, Grants
from satgate.tokens.identifier import IdentifierError, TokenIdentifier

_BUCKET_BYTES = 16  # bucket ids and fingerprints: the signature's first 16 bytes, 32 hex


@functools.lru_cache(maxsize=8192)
def _parsed(raw: bytes, attribute_keys: frozenset[str]) -> Caveat | Attribute | CaveatSyntaxError:
    """Caveats are immutable values and tokens share most of theirs (scopes, budgets, labels, the expiry of a
    batch): parsed once per distinct text, bounded. A refusal is remembered as well."""
    try:
        return parse_caveat(raw, attribute_keys)
    except CaveatSyntaxError as exc:
        return exc


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
    attributes: tuple[Attribute, ...]  # every attribute caveat, the holder's too: each must hold
    labels: tuple[str, ...]
    raw_caveats: tuple[bytes, ...]
    fingerprint: str  # unique per attenuation: the final signature, shortened
    expires_at: float | None = None  # the earliest `expires`, for reporting (requests judge the caveats)
    grants: Grants = NO_GRANTS  # what the issuer sealed: the only source of scopes, attributes and roles

    @property
    def caveat_texts(self) -> tuple[str, ...]:
        """For people (CLI, the Mint's verify): not needed to decide a request, so not decoded on the verify path."""
        return tuple(raw.decode() for raw in self.raw_caveats)

    @property
    def tenant(self) -> str:
        return self.identifier.tenant

    @property
    def token_id(self) -> str:
        return self.identifier.token_id

    def attribute(self, key: str) -> str | None:
        """The issuer's (sealed) value: what upstream headers and usage attribution may claim."""
        return self.grants.attribute(key)


def _within_depth_limits(depth_limits: list[tuple[int, MaxDelegationDepth]], revocation_ids: int) -> None:
    """Each limit counts the delegation steps after the caveat that set it."""
    for delegations_before, limit in depth_limits:
        if limit.exceeded_by(revocation_ids - delegations_before):
            raise TokenRejected(Denial(403, "caveat_failed", "delegation depth exceeded", limit.key))


def _issuers_own(last_issuer_bucket: int, seal_at: int) -> None:
    """A budget_bucket caveat counts only before the issuer's seal: one a holder appended (or a token without a
    seal) could name a bucket its holder must not draw on — another identity's budget."""
    if last_issuer_bucket > seal_at:
        raise _reject("invalid_signature", "a budget_bucket caveat is the issuer's: none may follow its seal")


class TokenVerifier:
    """Verifies tokens against a keyring. Verdicts are cached by exact token string: a hit is the same bytes
    that already verified (per-request caveats are still judged on every request), and a refused token is
    refused again for the cost of a lookup. The two caches are apart, so a flood of forgeries cannot evict
    the tokens in use."""

    def __init__(
        self,
        keyring: Keyring,
        attribute_keys: Collection[str] = (),
        tenants: Collection[str] | None = None,
        cache_size: int = 16384,
        refusal_cache_size: int = 4096,
    ) -> None:
        self._keyring = keyring
        self._attribute_keys = frozenset(attribute_keys)
        self._tenants = frozenset(tenants) if tenants else None
        self._accepted = functools.lru_cache(maxsize=cache_size)(self._verify_uncached)
        self._refused: OrderedDict[str, Denial] = OrderedDict()
        self._refusal_cache_size = refusal_cache_size

    def verify(self, token: str) -> VerifiedToken:
        refused = self._refused.get(token)
        if refused is not None:
            raise TokenRejected(refused)
        try:
            return self._accepted(token)
        except TokenRejected as exc:
            if self._refusal_cache_size:
                self._refused[token] = exc.denial
                if len(self._refused) > self._refusal_cache_size:
                    self._refused.popitem(last=False)  # oldest first: bounded whatever a flood sends
            raise

    def use_keyring(self, keyring: Keyring) -> None:
        """After rotation or retirement: cached verdicts were made with the old keys, so they go too."""
        self._keyring = keyring
        self._accepted.cache_clear()
        self._refused.clear()

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

    def _unseal(
        self, ident: TokenIdentifier, seal: Seal, before: bytes, checks: list[Caveat], attributes: list[Attribute]
    ) -> Grants:
        """The issuer's grants: every scope and attribute caveat before a seal that verifies."""
        if not seal.seals(self._keyring.seal_key(ident.tenant, ident.kid), before):
            raise _reject("invalid_signature", "token seal does not verify")
        return Grants(scopes=tuple(c for c in checks if isinstance(c, Scope)), attributes=tuple(attributes))

    def _interpret(self, ident: TokenIdentifier, raw_caveats: tuple[bytes, ...], sigs: list[bytes]) -> VerifiedToken:
        times: list[Expires | NotBefore] = []  # 401-class: judged first, so an expired token is never reported
        checks: list[Caveat] = []  # as merely out of scope
        buckets: list[Bucket] = []
        revocation_ids = [ident.token_id]
        attributes: list[Attribute] = []
        labels: list[str] = []
        grants: Grants | None = None
        last_issuer_bucket = seal_at = -1
        depth_limits: list[tuple[int, MaxDelegationDepth]] = []
        for index, raw in enumerate(raw_caveats):
            caveat = _parsed(raw, self._attribute_keys)
            if isinstance(caveat, CaveatSyntaxError):
                raise _reject("malformed_token", f"invalid caveat: {caveat}") from None
            match caveat:
                case Budget(credits=credits) | BudgetWindow(credits=credits):  # keyed by the signature after it
                    period = caveat.period if isinstance(caveat, BudgetWindow) else None
                    buckets.append(Bucket(sigs[index + 1][:_BUCKET_BYTES].hex(), credits, period))
                case BudgetBucket(bucket_id=bucket_id, period=period):
                    last_issuer_bucket = index
                    buckets.append(Bucket(bucket_id, 0, period))  # the ledger holds its limit
                case Delegation(delegation_id=delegation_id):
                    revocation_ids.append(delegation_id)
                case MaxDelegationDepth():
                    depth_limits.append((len(revocation_ids), caveat))
                case Attribute():
                    attributes.append(caveat)
                case Label(text=text):
                    labels.append(text)
                case Seal():
                    if grants is not None:
                        raise _reject("invalid_signature", "token carries more than one seal")
                    grants = self._unseal(ident, caveat, sigs[index], checks, attributes)
                    seal_at = index
                case Expires() | NotBefore():
                    times.append(caveat)
                case _:
                    checks.append(caveat)
        _issuers_own(last_issuer_bucket, seal_at)
        _within_depth_limits(depth_limits, len(revocation_ids))
        return VerifiedToken(
            identifier=ident,
            checks=(*times, *checks),
            buckets=tuple(buckets),
            revocation_ids=tuple(revocation_ids),
            attributes=tuple(attributes),
            labels=tuple(labels),
            raw_caveats=raw_caveats,
            fingerprint=sigs[-1][:_BUCKET_BYTES].hex(),
            expires_at=min((c.at for c in times if isinstance(c, Expires)), default=None),
            grants=grants or NO_GRANTS,
        )
