"""Why an identity was refused, shared by every provider."""

from __future__ import annotations


class IdentityError(Exception):
    """The presented identity is not valid (→ 401). `reason` is safe to return to the caller."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class BadRequest(Exception):
    """The request is malformed (→ 400)."""
