"""Every admin operation, declared once: its name (the gRPC method, the OpenAPI operationId, the role table's
key), HTTP method and path, request and response models, and what it runs. The HTTP routes, the gRPC servicer,
the OpenAPI document and the role test are all generated from this table, so the transports cannot drift."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from mint_server.admin.roles import OPERATION_ROLES
from mint_server.admin.service import AdminService
from mint_server.api.schemas import (
    BudgetChange,
    ChangeBudgetRequest,
    ChangeIdentityBudgetRequest,
    CreatePolicyRequest,
    Empty,
    ExportAuditRequest,
    ExportAuditResponse,
    GetTokenRequest,
    GetTokenResponse,
    ListDelegationsRequest,
    ListDelegationsResponse,
    ListIdentityBudgetsRequest,
    ListIdentityBudgetsResponse,
    ListPoliciesResponse,
    ListTokensRequest,
    ListTokensResponse,
    Model,
    Policy,
    PolicyHistoryResponse,
    PolicyName,
    PolicyVersion,
    QueryUsageRequest,
    QueryUsageResponse,
    RevokePolicyRequest,
    RevokePolicyResponse,
    RevokeRequest,
    RevokeResponse,
    UpdatePolicyRequest,
)
from mint_server.exchange.service import ExchangeDenied
from mint_server.policies.managed import Actor, PolicyRefused
from satgate.tokens.verify import VerifiedToken

# ------------------------------------------------------------------------------------------ the table
Run = Callable[[AdminService, VerifiedToken, Any], Awaitable[dict[str, Any]]]


@dataclass(frozen=True)
class Operation:
    name: str
    method: str
    path: str
    request: type[Model]
    response: type[Model]
    run: Run
    summary: str

    async def perform(self, admin: AdminService, token: VerifiedToken, arguments: Any) -> dict[str, Any]:
        """run(), with every refusal of an authenticated admin counted into the audit chain (aggregated)."""
        try:
            return await self.run(admin, token, arguments)
        except ExchangeDenied as denied:
            admin.refusals.record(token.tenant, token.token_id, self.name, denied.error, denied.status)
            raise

    @property
    def role(self) -> str:
        return OPERATION_ROLES[self.name]

    @property
    def path_params(self) -> tuple[str, ...]:
        return tuple(re.findall(r"\{(\w+)\}", self.path))


def _policies(call: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
    """PolicyRefused as the API's own refusal."""

    async def run(*args: Any) -> Any:
        try:
            return await call(*args)
        except PolicyRefused as refused:
            raise ExchangeDenied(refused.status, refused.error, refused.message) from None

    return run


def _actor(token: VerifiedToken) -> Actor:
    return Actor(token.tenant, token.token_id)


async def _list_policies(admin: AdminService, token: VerifiedToken, _r: Empty) -> dict[str, Any]:
    return {"policies": await admin.managed.list_policies(token.tenant)}


async def _get_policy(admin: AdminService, token: VerifiedToken, r: PolicyName) -> dict[str, Any]:
    return await admin.managed.get(token.tenant, r.name)


async def _policy_history(admin: AdminService, token: VerifiedToken, r: PolicyName) -> dict[str, Any]:
    return {"versions": await admin.managed.history(token.tenant, r.name)}


async def _create_policy(admin: AdminService, token: VerifiedToken, r: CreatePolicyRequest) -> dict[str, Any]:
    return await admin.managed.create(_actor(token), r.document)


async def _update_policy(admin: AdminService, token: VerifiedToken, r: UpdatePolicyRequest) -> dict[str, Any]:
    return await admin.managed.update(_actor(token), r.name, r.document, r.expected_version)


async def _enable_policy(admin: AdminService, token: VerifiedToken, r: PolicyName) -> dict[str, Any]:
    return await admin.managed.set_enabled(_actor(token), r.name, True)


async def _disable_policy(admin: AdminService, token: VerifiedToken, r: PolicyName) -> dict[str, Any]:
    return await admin.managed.set_enabled(_actor(token), r.name, False)


async def _delete_policy(admin: AdminService, token: VerifiedToken, r: PolicyName) -> dict[str, Any]:
    return await admin.managed.delete(_actor(token), r.name)


async def _revoke_policy(admin: AdminService, token: VerifiedToken, r: RevokePolicyRequest) -> dict[str, Any]:
    return await admin.revoke_policy(token, r.name, r.reason, revoke_tokens=r.revoke_tokens)


async def _list_tokens(admin: AdminService, token: VerifiedToken, r: ListTokensRequest) -> dict[str, Any]:
    return await admin.tokens.list_tokens(token, policy=r.policy, label=r.label, before=r.before, limit=r.limit)


async def _get_token(admin: AdminService, token: VerifiedToken, r: GetTokenRequest) -> dict[str, Any]:
    return await admin.tokens.get(token, r.token_id)


async def _change_budget(admin: AdminService, token: VerifiedToken, r: ChangeBudgetRequest) -> dict[str, Any]:
    return await admin.tokens.change_budget(token, r.id, r.delta, r.reason, bucket=r.bucket or "")


async def _revoke(admin: AdminService, token: VerifiedToken, r: RevokeRequest) -> dict[str, Any]:
    return await admin.revoke(token, r.id, r.reason, pre_revoke=r.pre_revoke)


async def _list_delegations(admin: AdminService, token: VerifiedToken, r: ListDelegationsRequest) -> dict[str, Any]:
    records = await admin.delegations(token, token_id=r.token_id, delegation_id=r.delegation_id)
    return {"delegations": records}


async def _query_usage(admin: AdminService, token: VerifiedToken, r: QueryUsageRequest) -> dict[str, Any]:
    return await admin.tokens.usage(token, by=r.by, since=r.since)


async def _export_audit(admin: AdminService, token: VerifiedToken, r: ExportAuditRequest) -> dict[str, Any]:
    records = await admin.audit_records(token, since=r.since, event_type=r.type, category=r.category)
    return {"records": records[-r.limit :] if r.limit else records}


async def _list_identity_budgets(
    admin: AdminService, token: VerifiedToken, r: ListIdentityBudgetsRequest
) -> dict[str, Any]:
    return await admin.identity_budgets.list(token, r.policy)


async def _change_identity_budget(
    admin: AdminService, token: VerifiedToken, r: ChangeIdentityBudgetRequest
) -> dict[str, Any]:
    return await admin.identity_budgets.change(token, r.policy, r.identity, delta=r.delta, reason=r.reason, kind=r.kind)


_P = "/api/admin/policies"
OPERATIONS: tuple[Operation, ...] = (
    Operation(
        "ListPolicies", "GET", _P, Empty, ListPoliciesResponse, _list_policies, "Trust policies, files' and API-managed"
    ),
    Operation("GetPolicy", "GET", _P + "/{name}", PolicyName, Policy, _policies(_get_policy), "One trust policy"),
    Operation(
        "PolicyHistory",
        "GET",
        _P + "/{name}/history",
        PolicyName,
        PolicyHistoryResponse,
        _policies(_policy_history),
        "Every version of an API-managed policy",
    ),
    Operation(
        "CreatePolicy",
        "POST",
        _P,
        CreatePolicyRequest,
        PolicyVersion,
        _policies(_create_policy),
        "Add a trust policy (validated as a file's)",
    ),
    Operation(
        "UpdatePolicy",
        "PUT",
        _P + "/{name}",
        UpdatePolicyRequest,
        PolicyVersion,
        _policies(_update_policy),
        "Replace a policy: a new version",
    ),
    Operation(
        "EnablePolicy",
        "POST",
        _P + "/{name}/enable",
        PolicyName,
        PolicyVersion,
        _policies(_enable_policy),
        "Let a policy issue again",
    ),
    Operation(
        "DisablePolicy",
        "POST",
        _P + "/{name}/disable",
        PolicyName,
        PolicyVersion,
        _policies(_disable_policy),
        "Stop a policy issuing, at once",
    ),
    Operation(
        "DeletePolicy",
        "DELETE",
        _P + "/{name}",
        PolicyName,
        PolicyVersion,
        _policies(_delete_policy),
        "Remove an API-managed policy",
    ),
    Operation(
        "RevokePolicy",
        "POST",
        _P + "/{name}/revoke",
        RevokePolicyRequest,
        RevokePolicyResponse,
        _revoke_policy,
        "Stop any policy issuing, for good",
    ),
    Operation(
        "ListTokens",
        "GET",
        "/api/admin/tokens",
        ListTokensRequest,
        ListTokensResponse,
        _list_tokens,
        "Issued tokens, newest first, with remaining credits",
    ),
    Operation(
        "GetToken",
        "GET",
        "/api/admin/tokens/{token_id}",
        GetTokenRequest,
        GetTokenResponse,
        _get_token,
        "A token, its delegations and budget changes",
    ),
    Operation(
        "ChangeBudget",
        "POST",
        "/api/admin/budgets",
        ChangeBudgetRequest,
        BudgetChange,
        _change_budget,
        "Top up or cut a budget",
    ),
    Operation(
        "ListIdentityBudgets",
        "GET",
        "/api/admin/identity-budgets",
        ListIdentityBudgetsRequest,
        ListIdentityBudgetsResponse,
        _list_identity_budgets,
        "A policy's identity budgets, by rule and identity, with what they have left",
    ),
    Operation(
        "ChangeIdentityBudget",
        "POST",
        "/api/admin/identity-budgets",
        ChangeIdentityBudgetRequest,
        BudgetChange,
        _change_identity_budget,
        "Top up or cut one identity's budget under a policy",
    ),
    Operation(
        "Revoke",
        "POST",
        "/api/admin/revoke",
        RevokeRequest,
        RevokeResponse,
        _revoke,
        "Revoke a token or delegation and all below it",
    ),
    Operation(
        "ListDelegations",
        "GET",
        "/api/admin/delegations",
        ListDelegationsRequest,
        ListDelegationsResponse,
        _list_delegations,
        "A delegation tree",
    ),
    Operation(
        "QueryUsage",
        "GET",
        "/api/admin/usage",
        QueryUsageRequest,
        QueryUsageResponse,
        _query_usage,
        "Requests and credits by token, tenant, label, route or attribute",
    ),
    Operation(
        "ExportAudit",
        "GET",
        "/api/admin/audit",
        ExportAuditRequest,
        ExportAuditResponse,
        _export_audit,
        "The tenant's audit records (JSON or CSV)",
    ),
)
