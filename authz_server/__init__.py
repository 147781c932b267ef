"""Envoy ext_authz v3 gRPC server: verify the macaroon, judge its caveats, debit the ledger, answer."""
