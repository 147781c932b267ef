"""Tokens and budgets: the exchange (an identity in, a sealed token out), its issuance, the identity budgets a
trust rule sets in the ledger, and the per-workload rate limit."""
