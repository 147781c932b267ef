"""Delivery claims (route settings `refund_on`, `settle`): what an allow puts in Envoy's dynamic metadata so that the
access-log entry of the same request can refund or settle its debit later, with no state kept in the authz server
(any replica, after any restart, can do it). A claim names the debit exactly — tenant, debit id, the attempt that
spent, the buckets it charged (limit and window period), the check's time, the credits reserved, the token — and
is HMAC-signed with a key derived from the keyring, so an access-log stream from anyone but our own Envoy cannot
make one up. The ledger refunds or settles a debit once; a claim replayed does nothing."""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass

from satgate.keyring import Keyring
from satgate.ledger.base import Bucket
from satgate.ledger.windows import Period, PeriodSyntaxError

METADATA_KEY = "refund"  # in the ext_authz filter's dynamic metadata, which Envoy's access log carries
_VERSION = "r2"
_FIELD = re.compile(r"[A-Za-z0-9_.:+/=-]*")  # nothing of ours holds "~" or ","; anything else is no claim
_MAC_HEX = 32
_PARTS = 12


@dataclass(frozen=True, slots=True)
class RefundClaim:
    refund_on: tuple[str, ...]
    tenant: str
    token_id: str
    debit_id: str
    attempt: str
    buckets: tuple[Bucket, ...]
    settle: str = ""  # "response_header": settle to the upstream's x-satgate-cost
    checked_at: float = 0.0
    reserved: int = 0


def _bucket_text(bucket: Bucket) -> str:
    text = f"{bucket.bucket_id}/{bucket.limit}"
    return text if bucket.period is None else f"{text}/{bucket.period}"


def _bucket_of(text: str) -> Bucket | None:
    bucket_id, _, rest = text.partition("/")
    limit, _, period = rest.partition("/")
    if not limit.isdigit():
        return None
    try:
        return Bucket(bucket_id, int(limit), Period.parse(period) if period else None)
    except PeriodSyntaxError:
        return None


def _body(kid: str, claim: RefundClaim) -> str | None:
    buckets = [_bucket_text(b) for b in claim.buckets]
    single = [kid, claim.tenant, claim.token_id, claim.debit_id, claim.attempt, claim.settle, *claim.refund_on]
    single += buckets
    if not all(_FIELD.fullmatch(p) for p in single):
        return None
    parts = [
        _VERSION,
        kid,
        ",".join(claim.refund_on),
        claim.settle,
        claim.tenant,
        claim.token_id,
        claim.debit_id,
        claim.attempt,
        f"{claim.checked_at:.6f}",
        str(claim.reserved),
        ",".join(buckets),
    ]
    return "~".join(parts)


def _mac(keyring: Keyring, kid: str, body: str) -> str:
    return hmac.new(keyring.refund_key(kid), body.encode(), hashlib.sha256).hexdigest()[:_MAC_HEX]


def sign(keyring: Keyring, claim: RefundClaim) -> str | None:
    """The claim as one metadata string, signed with the active key; None if a field cannot be carried."""
    body = _body(keyring.active_kid, claim)
    return None if body is None else f"{body}~{_mac(keyring, keyring.active_kid, body)}"


def verify(keyring: Keyring, text: str) -> RefundClaim | None:
    """The claim, if `text` is one we signed with a key the keyring still holds; else None."""
    parts = text.split("~")
    if len(parts) != _PARTS or parts[0] != _VERSION or parts[1] not in keyring.keys:
        return None
    body, mac = "~".join(parts[:-1]), parts[-1]
    if not hmac.compare_digest(_mac(keyring, parts[1], body), mac):
        return None
    refund_on, settle, tenant, token_id, debit_id, attempt, checked_at, reserved, buckets = parts[2:11]
    parsed = [_bucket_of(b) for b in buckets.split(",")] if buckets else []
    if any(b is None for b in parsed) or not reserved.isdigit():
        return None
    try:
        when = float(checked_at)
    except ValueError:
        return None
    return RefundClaim(
        tuple(refund_on.split(",")) if refund_on else (),
        tenant,
        token_id,
        debit_id,
        attempt,
        tuple(b for b in parsed if b is not None),
        settle,
        when,
        int(reserved),
    )
