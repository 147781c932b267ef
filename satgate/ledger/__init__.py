"""Budgets, revocation and idempotency behind one interface (SPEC: Ledger)."""

from satgate.ledger.base import (
    Bucket,
    DebitRequest,
    DebitResult,
    Ledger,
    LedgerUnavailable,
    Outcome,
)

__all__ = ["Bucket", "DebitRequest", "DebitResult", "Ledger", "LedgerUnavailable", "Outcome"]
