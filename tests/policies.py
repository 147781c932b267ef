"""Trust policies tests write for a running stack."""


def demo_issuer_policy(idp_port: int, issue: str) -> str:
    """One policy file trusting the stack's demo issuer for subjects `agent-*`; `issue` is its rule's issue."""
    return f"""
provider: oidc
issuer: http://127.0.0.1:{idp_port}
audience: satgate
trust_rules:
  - match: {{claims: {{sub: "agent-*"}}}}
    issue: {issue}
"""
