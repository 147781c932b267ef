"""Mint: exchanges workload identities (Kubernetes, GitHub Actions, OIDC, AWS IAM) for SatGate tokens according
to trust policies, over HTTP/JSON and gRPC."""
