"""The admin API's request and response models (pydantic): what the HTTP routes and the gRPC adapter validate,
and what the OpenAPI document describes. Field names are the proto messages' (tests/mint/test_admin_api.py)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StrictBool, model_validator

from satgate.audit import CATEGORIES

Id = Annotated[str, Field(pattern=r"^[0-9a-f]{32}$", description="a token_id or delegation_id (32 lowercase hex)")]
PolicyNameField = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$")]
Reason = Annotated[str, Field(max_length=200)]


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


# ------------------------------------------------------------------------------------------ requests
class Empty(Model):
    pass


class PolicyName(Model):
    name: PolicyNameField


class CreatePolicyRequest(Model):
    document: dict[str, Any] = Field(description="a trust policy as a file holds it (SPEC: Mint / Trust policies)")


class UpdatePolicyRequest(Model):
    name: PolicyNameField
    document: dict[str, Any]
    expected_version: int | None = Field(None, description="refused (409) if the policy moved past this version")


class RevokePolicyRequest(Model):
    name: PolicyNameField
    reason: Reason = ""
    revoke_tokens: bool = Field(False, description="also revoke every token issued under the policy (and its children)")


class ListTokensRequest(Model):
    policy: str | None = None
    label: Annotated[str, Field(max_length=200)] | None = None
    before: float | None = Field(None, description="the previous page's next_before")
    limit: Annotated[int, Field(ge=1, le=1000)] = 100


class GetTokenRequest(Model):
    token_id: Id


def _moves(delta: int) -> int:
    if delta == 0:
        raise ValueError("delta must not be 0: a positive number tops up, a negative one cuts")
    return delta


Delta = Annotated[int, Field(ge=-(10**15), le=10**15, description="credits: + tops up, - cuts"), AfterValidator(_moves)]


class ChangeBudgetRequest(Model):
    id: Id
    delta: Delta
    reason: Reason = ""
    bucket: Literal["lifetime", "window"] | None = Field(
        None, description="which budget: window (its budget_window's) or lifetime; default lifetime when it has one"
    )


class ListIdentityBudgetsRequest(Model):
    policy: PolicyNameField


class ChangeIdentityBudgetRequest(Model):
    policy: PolicyNameField
    identity: Annotated[str, Field(min_length=1, max_length=1024, description="the identity's subject (sub, ARN)")]
    delta: Delta
    reason: Reason = ""
    kind: Literal["credits", "window"] | None = Field(
        None, description="which of the rule's budgets: credits (per ttl period) or window; default credits"
    )


class RevokeRequest(Model):
    id: Id
    reason: Reason = ""
    pre_revoke: StrictBool = False


class ListDelegationsRequest(Model):
    token_id: Id | None = None
    delegation_id: Id | None = None

    @model_validator(mode="after")
    def _one(self) -> ListDelegationsRequest:
        if (self.token_id is None) == (self.delegation_id is None):
            raise ValueError("give token_id or delegation_id (one of them)")
        return self


class QueryUsageRequest(Model):
    by: Annotated[
        str,
        Field(
            pattern=r"^(token|tenant|label|route|attr:[A-Za-z0-9_.]+)$",
            description="token, tenant, label, route or attr:<key>",
        ),
    ] = "token"
    since: str = "24h"


class ExportAuditRequest(Model):
    type: Annotated[str, Field(pattern=r"^[a-z_]{1,64}$")] | None = None
    category: Literal[CATEGORIES] | None = None  # type: ignore[valid-type]
    since: str | None = Field(None, description="a duration back from now, e.g. 7d")
    limit: Annotated[int, Field(ge=1, le=100_000)] | None = None
    format: Literal["json", "csv"] = "json"


# ------------------------------------------------------------------------------------------ responses
class Policy(Model):
    name: str
    tenant: str
    provider: str
    state: Literal["enabled", "disabled", "revoked"]
    disabled: bool
    source: Literal["file", "api"]
    read_only: bool
    version: int | None
    document: dict[str, Any]


class ListPoliciesResponse(Model):
    policies: list[Policy]


class PolicyVersion(Model):
    name: str
    version: int
    tenant: str
    action: str
    document: dict[str, Any] | None
    created_at: float
    actor: str


class PolicyHistoryResponse(Model):
    versions: list[PolicyVersion]


class RevokePolicyResponse(Model):
    policy: str
    revoked: bool
    already_revoked: bool
    tokens_revoked: int = 0


class BudgetWindowState(Model):
    """A windowed budget's current window: its limit, what is left in it and when it resets."""

    credits: int
    period: str
    window_start: str
    resets_at: str
    remaining: int


class Token(Model):
    tenant: str
    token_id: str
    issued_at: float
    source: str
    policy: str | None
    subject: str | None
    label: str | None
    budget_credits: int | None
    bucket_id: str | None
    scopes: str | None
    expires_at: str | None
    remaining: int | None
    revoked: bool
    budget_window: str | None = None
    window_bucket_id: str | None = None
    window: BudgetWindowState | None = None
    budget_per: str | None = None
    budget_rule: str | None = None
    budget_period: str | None = None
    budget_limit: int | None = None  # an identity budget's limit now (budget_credits: as issued)
    budget_resets_at: str | None = None  # when an identity budget's period refills


class ListTokensResponse(Model):
    tokens: list[Token]
    next_before: float | None


class Delegation(Model):
    tenant: str
    delegation_id: str
    token_id: str
    parent_delegation_id: str | None
    created_at: float
    actor: str
    label: str | None
    budget_credits: int | None
    scopes: str | None
    expires_at: str
    bucket_id: str | None
    remaining: int | None = None
    revoked: bool = False
    budget_window: str | None = None
    window_bucket_id: str | None = None
    window: BudgetWindowState | None = None


class IdentityBudget(Model):
    """One identity budget of a trust rule (SPEC v2.2): shared by every token issued for its budget key."""

    rule: str
    kind: Literal["credits", "window"]
    bucket_id: str
    period: str
    identities: list[str]  # the subjects its tokens were issued to (at most 20 shown)
    tokens: int
    limit: int | None
    remaining: int
    resets_at: str


class ListIdentityBudgetsResponse(Model):
    policy: str
    budgets: list[IdentityBudget]


class BudgetChange(Model):
    tenant: str
    target_id: str
    bucket_id: str
    delta: int
    remaining: int
    actor: str
    reason: str
    changed_at: float


class GetTokenResponse(Model):
    token: Token
    delegations: list[Delegation]
    budget_changes: list[BudgetChange]


class RevokeResponse(Model):
    revoked: str
    tenant: str
    recorded_as: str | None
    already_revoked: bool
    known_delegations: list[str]


class ListDelegationsResponse(Model):
    delegations: list[Delegation]


class UsageRow(Model):
    key: str | None
    requests: int
    allowed: int
    denied: int
    credits: int


class QueryUsageResponse(Model):
    by: str
    since: str
    rows: list[UsageRow]


class ExportAuditResponse(Model):
    records: list[dict[str, Any]] = Field(description="in chain order, each with seq, prev_hash and hash")
