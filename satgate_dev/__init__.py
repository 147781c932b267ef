"""Dev-only code: the local stack (`satgate up`, the end-to-end tests), the demo OIDC issuer and upstream, the
Envoy config renderer and the proto generator. Nothing in the product imports it."""
