"""Budgets, revocation and idempotency behind one interface (SPEC: Ledger)."""

from satgate.ledger.base import (
    Bucket,
    BudgetAdjustment,
    DebitRequest,
    DebitResult,
    Ledger,
    LedgerUnavailable,
    Outcome,
)

__all__ = ["Bucket", "BudgetAdjustment", "DebitRequest", "DebitResult", "Ledger", "LedgerUnavailable", "Outcome"]
