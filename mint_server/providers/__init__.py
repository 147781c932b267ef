"""Identity providers: OIDC/JWT (Kubernetes, GitHub Actions, any IdP) and AWS IAM via STS."""
