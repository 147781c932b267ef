"""The bearer credential from an Authorization header (the authz pipeline and the Mint read it alike)."""

from __future__ import annotations

from satgate.caveats import Denial
from satgate.tokens.wire import MAX_TOKEN_CHARS

MISSING = Denial(401, "missing_token", "an Authorization: Bearer token is required")


def bearer_token(authorization: str) -> str | Denial:
    """The token, or why there is none. Non-Bearer schemes count as no token."""
    if not authorization:
        return MISSING
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "bearer":
        return MISSING
    token = token.strip()
    if not token:
        return Denial(401, "malformed_token", "the Bearer token is empty")
    if len(token) > MAX_TOKEN_CHARS:
        return Denial(401, "malformed_token", f"the Bearer token is longer than {MAX_TOKEN_CHARS} characters")
    return token
