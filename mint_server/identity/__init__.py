"""Identity: a presented credential (an OIDC/Kubernetes/GitHub JWT, a signed AWS STS request) verified into an
`Identity` the trust policies can match."""
