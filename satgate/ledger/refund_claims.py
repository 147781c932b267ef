"""Refund claims (route setting `refund_on`): what an allow puts in Envoy's dynamic metadata so that the access-log
entry of the same request can refund its debit later, with no state kept in the authz server (any replica, after
any restart, can pay it). A claim names the debit exactly — tenant, debit id, the attempt that spent, the buckets it
charged, the token — and is HMAC-signed with a key derived from the keyring, so an access-log stream from anyone but
our own Envoy cannot make one up. The ledger refunds a debit once; a claim replayed refunds nothing."""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass

from satgate.keyring import Keyring

METADATA_KEY = "refund"  # in the ext_authz filter's dynamic metadata, which Envoy's access log carries
_VERSION = "r1"
_FIELD = re.compile(r"[A-Za-z0-9_.:+/=-]*")  # nothing of ours holds "~" or ","; anything else is no claim
_MAC_HEX = 32


@dataclass(frozen=True, slots=True)
class RefundClaim:
    refund_on: tuple[str, ...]
    tenant: str
    token_id: str
    debit_id: str
    attempt: str
    bucket_ids: tuple[str, ...]


def _body(kid: str, claim: RefundClaim) -> str | None:
    single = [kid, claim.tenant, claim.token_id, claim.debit_id, claim.attempt, *claim.refund_on, *claim.bucket_ids]
    if not all(_FIELD.fullmatch(p) for p in single):
        return None
    parts = [_VERSION, kid, ",".join(claim.refund_on), claim.tenant, claim.token_id, claim.debit_id, claim.attempt]
    return "~".join([*parts, ",".join(claim.bucket_ids)])


def _mac(keyring: Keyring, kid: str, body: str) -> str:
    return hmac.new(keyring.refund_key(kid), body.encode(), hashlib.sha256).hexdigest()[:_MAC_HEX]


def sign(keyring: Keyring, claim: RefundClaim) -> str | None:
    """The claim as one metadata string, signed with the active key; None if a field cannot be carried."""
    body = _body(keyring.active_kid, claim)
    return None if body is None else f"{body}~{_mac(keyring, keyring.active_kid, body)}"


def verify(keyring: Keyring, text: str) -> RefundClaim | None:
    """The claim, if `text` is one we signed with a key the keyring still holds; else None."""
    parts = text.split("~")
    if len(parts) != 9 or parts[0] != _VERSION or parts[1] not in keyring.keys:
        return None
    body, mac = "~".join(parts[:8]), parts[8]
    if not hmac.compare_digest(_mac(keyring, parts[1], body), mac):
        return None
    refund_on, tenant, token_id, debit_id, attempt, buckets = parts[2:8]
    return RefundClaim(
        tuple(refund_on.split(",")) if refund_on else (),
        tenant,
        token_id,
        debit_id,
        attempt,
        tuple(buckets.split(",")) if buckets else (),
    )
