"""What the Mint's operations answer, shared by the service, the issuance and both front ends."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mint_server.identity import aws
from mint_server.policies.models import Identity, TrustPolicy


class ExchangeDenied(Exception):
    """A refusal with its HTTP status: 400 bad request, 401 identity, 403 policy, 429 rate, 503 upstream."""

    def __init__(
        self,
        status: int,
        error: str,
        message: str,
        *,
        policy: TrustPolicy | None = None,
        identity: Identity | None = None,
        retry_after: int | None = None,
    ) -> None:
        super().__init__(message)
        self.status, self.error, self.message = status, error, message
        self.policy, self.identity = policy, identity
        self.retry_after = retry_after  # seconds, for 429: when the next exchange would be allowed


@dataclass(frozen=True)
class ExchangeResult:
    token: str
    token_id: str
    tenant: str
    expires_at: str
    budget_credits: int | None
    caveats: tuple[str, ...]
    policy: str
    budget_window: str | None = None
    # Identity budgets: the identity's remaining across exchanges and when it refills (None: per-token budget)
    identity_budget: dict[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "token": self.token,
            "token_id": self.token_id,
            "tenant": self.tenant,
            "expires_at": self.expires_at,
            "budget_credits": self.budget_credits,
            "budget_window": self.budget_window,
            "caveats": list(self.caveats),
            "policy": self.policy,
            "identity_budget": self.identity_budget,
        }


@dataclass(frozen=True)
class VerifyResult:
    valid: bool
    token_id: str | None = None
    tenant: str | None = None
    caveats: tuple[str, ...] = ()
    remaining: int | None = None
    error: str | None = None
    resets_at: str | None = None  # when the budget that leaves the least refills (a windowed or identity budget)

    def to_json(self) -> dict[str, Any]:
        if not self.valid:
            return {"valid": False, "error": self.error}
        return {
            "valid": True,
            "token_id": self.token_id,
            "tenant": self.tenant,
            "caveats": list(self.caveats),
            "remaining": self.remaining,
            "resets_at": self.resets_at,
        }


@dataclass
class MintSettings:
    max_ttl_seconds: int
    attribute_keys: frozenset[str]
    aws: aws.AwsSettings | None
