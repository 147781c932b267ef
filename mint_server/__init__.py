"""Mint: issues satgate tokens. This release serves health and token verification; identity exchange
(workload JWT / AWS STS → macaroon by trust policy) builds on it."""
