"""The signed delivery claim an allow carries in its access-log metadata (route settings refund_on, settle): all
the access-log stream needs to refund or settle the debit later, at any replica."""

from __future__ import annotations

from satgate.keyring import Keyring
from satgate.ledger import DebitRequest, refund_claims
from satgate.ledger.refund_claims import RefundClaim
from satgate.routes import RouteSettings
from satgate.tokens.verify import VerifiedToken


def signed_claim(keyring: Keyring, route: RouteSettings, debit: DebitRequest, token: VerifiedToken) -> str | None:
    """None when there is nothing to claim (a free request without settling) or it cannot be carried."""
    assert debit.debit_id is not None
    claim = RefundClaim(
        route.refund_on if debit.cost else (),
        token.tenant,
        token.token_id,
        debit.debit_id,
        debit.attempt,
        debit.buckets,
        route.settle or "",
        debit.checked_at or 0.0,
        debit.cost,
    )
    if not claim.refund_on and not claim.settle:
        return None
    return refund_claims.sign(keyring, claim)
