"""What every provider shares: the verified identity it yields, and why one is refused."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


class IdentityError(Exception):
    """The presented identity is not valid (→ 401). `reason` is safe to return to the caller."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class BadRequest(Exception):
    """The request is malformed (→ 400)."""


@dataclass(frozen=True)
class Identity:
    """A verified workload identity, whatever the provider, as facts rules can match."""

    provider: str
    subject: str
    claims: Mapping[str, Any]
    issuer: str | None = None
    # A JWT's one-time key (issuer and jti, else the token's hash) and until when it could be presented
    replay_key: bytes | None = None
    replay_until: float = 0.0
