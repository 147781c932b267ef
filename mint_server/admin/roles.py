"""Admin roles (SPEC v2: Control plane, Roles) and the role each admin operation needs — one table for the HTTP
and gRPC APIs, the OpenAPI document and the docs.

Roles nest: admin includes member, member includes viewer. A credential holds role R when the issuer sealed R or a
higher role (an explicit pattern: `satgate:*` grants all three, a bare `*` none) and every scope caveat, the
holder's appended ones too, permits R or a higher role: an admin token narrowed with `scope = satgate:viewer` is a
viewer, a viewer token with `scope = satgate:admin` appended is still a viewer."""

from __future__ import annotations

from satgate.caveats import Scope
from satgate.tokens.verify import VerifiedToken

VIEWER, MEMBER, ADMIN = "satgate:viewer", "satgate:member", "satgate:admin"
ROLES = (VIEWER, MEMBER, ADMIN)  # lowest first

# Every admin operation by its name (the gRPC method, the OpenAPI operationId) and the lowest role allowed it.
OPERATION_ROLES: dict[str, str] = {
    # read everything: viewer
    "ListPolicies": VIEWER,
    "GetPolicy": VIEWER,
    "PolicyHistory": VIEWER,
    "ListTokens": VIEWER,
    "GetToken": VIEWER,
    "ListDelegations": VIEWER,
    "QueryUsage": VIEWER,
    "ExportAudit": VIEWER,
    "ListIdentityBudgets": VIEWER,
    # act on tokens: member
    "Revoke": MEMBER,
    # policies and budgets: admin
    "CreatePolicy": ADMIN,
    "UpdatePolicy": ADMIN,
    "EnablePolicy": ADMIN,
    "DisablePolicy": ADMIN,
    "DeletePolicy": ADMIN,
    "RevokePolicy": ADMIN,
    "ChangeBudget": ADMIN,
    "ChangeIdentityBudget": ADMIN,
}


def role_of(token: VerifiedToken) -> str | None:
    """The highest role the token holds, or None."""
    scopes = [c for c in token.checks if isinstance(c, Scope)]
    held = None
    for index, role in enumerate(ROLES):
        at_least = ROLES[index:]
        sealed = any(token.grants.grant_role(r) for r in at_least)
        if sealed and all(any(scope.permits(r) for r in at_least) for scope in scopes):
            held = role
    return held


def allows(held: str | None, operation: str) -> bool:
    needed = OPERATION_ROLES[operation]
    return held is not None and ROLES.index(held) >= ROLES.index(needed)
