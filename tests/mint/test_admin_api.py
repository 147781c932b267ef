"""The admin API (SPEC: Control plane): every operation over HTTP and gRPC from one table, each role allowed or
refused exactly as the table says (and refusals audited), trust policies managed by API, the token registry with
remaining credits, budget changes the next debit honours, and the OpenAPI document."""

import json
import re

import grpc
import pytest
import yaml
from google.protobuf.json_format import MessageToDict
from openapi_spec_validator import validate

from mint_server.admin.roles import ADMIN, MEMBER, ROLES, VIEWER
from mint_server.api.openapi import openapi_document
from mint_server.api.operations import OPERATIONS
from mint_server.policies.files import validate_policy
from satgate.ledger import DebitRequest, Outcome
from satgate.ledger.url import open_ledger
from satgate.tokens.verify import TokenVerifier
from satgate_api.admin.v1 import admin_pb2, admin_pb2_grpc

from .conftest import oidc_policy, policies
from .test_admin import admin_token, bearer

HEX = "a" * 32
# Arguments each operation validates with (the role check comes first; what follows may still be a 404).
SAMPLE = {
    "ListPolicies": {},
    "GetPolicy": {"name": "agents"},
    "PolicyHistory": {"name": "managed"},
    "CreatePolicy": {"document": {}},
    "UpdatePolicy": {"name": "managed", "document": {}},
    "EnablePolicy": {"name": "managed"},
    "DisablePolicy": {"name": "managed"},
    "DeletePolicy": {"name": "managed"},
    "RevokePolicy": {"name": "nonexistent"},
    "ListTokens": {},
    "GetToken": {"token_id": HEX},
    "ChangeBudget": {"id": HEX, "delta": 1},
    "ListIdentityBudgets": {"policy": "agents"},
    "ChangeIdentityBudget": {"policy": "agents", "identity": "agent-1", "delta": 1},
    "Revoke": {"id": HEX},
    "ListDelegations": {"token_id": HEX},
    "QueryUsage": {},
    "ExportAudit": {},
}


def managed_policy(issuer: str, *, name: str = "managed", budget: int = 7, scopes=("api:read",)) -> dict:
    return {
        "name": name,
        "provider": "oidc",
        "issuer": issuer,
        "audience": "satgate",
        "trust_rules": [
            {"match": {"claims": {"sub": "bot-*"}}, "issue": {"budget_credits": budget, "scopes": list(scopes)}}
        ],
    }


@pytest.fixture
async def mint_server(idp, start_mint):
    return await start_mint(policies(oidc_policy(idp.issuer, issue="budget_credits: 5, scopes: [api:read]")))


async def call_http(m, operation, token, arguments):
    path = operation.path
    rest = dict(arguments)
    for name in operation.path_params:
        path = path.replace("{" + name + "}", str(rest.pop(name)))
    headers = bearer(token) if token else {}
    if operation.method in ("GET", "DELETE"):
        response = await m.client.request(operation.method, path, headers=headers, params=rest)
    else:
        response = await m.client.request(operation.method, path, headers=headers, json=rest)
    return response.status, await response.json() if response.content_type == "application/json" else None


def test_every_operation_has_a_role_route_grpc_method_and_sample():
    methods = admin_pb2.DESCRIPTOR.services_by_name["Admin"].methods_by_name
    assert {op.name for op in OPERATIONS} == set(methods) == set(SAMPLE)
    assert len({(op.method, op.path) for op in OPERATIONS}) == len(OPERATIONS)


def test_roles_follow_the_spec():
    """SPEC: viewer reads everything; member also revokes (mints and delegates through the Mint API); policy and
    budget changes are admin's. Written out apart from the table, so a changed table fails here."""
    for op in OPERATIONS:
        spec_role = VIEWER if op.method == "GET" else MEMBER if op.name == "Revoke" else ADMIN
        assert op.role == spec_role, op.name


def test_models_and_protos_name_the_same_fields():
    """The gRPC adapter reads requests and writes responses by field name: a drift would fail at run time."""
    methods = admin_pb2.DESCRIPTOR.services_by_name["Admin"].methods_by_name
    for op in OPERATIONS:
        request_fields = set(methods[op.name].input_type.fields_by_name)
        response_fields = set(methods[op.name].output_type.fields_by_name)
        assert set(op.request.model_fields) <= request_fields, op.name
        assert set(op.response.model_fields) == response_fields, op.name


def test_openapi_document_is_valid_openapi_3_1():
    document = openapi_document()
    validate(document)
    assert document["openapi"] == "3.1.0"
    for op in OPERATIONS:
        entry = document["paths"][op.path][op.method.lower()]
        assert (entry["operationId"], entry["x-satgate-role"]) == (op.name, op.role)


async def test_openapi_is_served(mint_server):
    response = await mint_server.client.get("/api/openapi.json")
    assert response.status == 200
    validate(await response.json())


@pytest.mark.parametrize("transport", ["http", "grpc"])
async def test_every_operation_with_every_role(mint_server, keyring, transport):
    """Allowed: the role check passes (any answer but 401/403) and admin_access names the operation. Refused:
    403, audited admin_denied with the operation."""
    holders = {role: admin_token(keyring, "acme", role) for role in ROLES}
    holders[None] = admin_token(keyring, "acme", "api:read")  # a valid token of the tenant, with no admin role
    async with grpc.aio.insecure_channel(mint_server.grpc_target) as channel:
        stub = admin_pb2_grpc.AdminStub(channel)
        methods = admin_pb2.DESCRIPTOR.services_by_name["Admin"].methods_by_name
        for op in OPERATIONS:
            for role, token in holders.items():
                expected = role is not None and ROLES.index(role) >= ROLES.index(op.role)
                before = len(await mint_server.audit())
                if transport == "http":
                    status, _body = await call_http(mint_server, op, token, SAMPLE[op.name])
                    refused = status == 403
                    assert status != 401, (op.name, role)
                else:
                    request = getattr(admin_pb2, methods[op.name].input_type.name)()
                    for key, value in SAMPLE[op.name].items():
                        if isinstance(value, dict):
                            getattr(request, key).update(value)
                        else:
                            setattr(request, key, value)
                    code = None
                    try:
                        await getattr(stub, op.name)(request, metadata=[("authorization", f"Bearer {token}")])
                        refused = False
                    except grpc.aio.AioRpcError as exc:
                        code = exc.code()
                        refused = code == grpc.StatusCode.PERMISSION_DENIED
                    assert not refused or code != grpc.StatusCode.UNAUTHENTICATED, (op.name, role)
                assert refused is not expected, (op.name, role, transport)
                added = (await mint_server.audit())[before:]
                kind = "admin_access" if expected else "admin_denied"
                assert [r["details"]["operation"] for r in added if r["type"] == kind] == [op.name], (op.name, role)


async def test_without_a_credential_every_operation_is_401(mint_server):
    for op in OPERATIONS:
        status, body = await call_http(mint_server, op, None, SAMPLE[op.name])
        assert status == 401, (op.name, body)


async def test_policies_managed_by_api_drive_the_next_exchange(idp, mint_server, keyring):
    admin = bearer(admin_token(keyring))
    client = mint_server.client
    assert (await mint_server.exchange(idp.token("bot-1", "satgate")))[0] == 403  # no policy matches bots yet

    created = await client.post("/api/admin/policies", headers=admin, json={"document": managed_policy(idp.issuer)})
    assert created.status == 200, await created.text()
    assert (await created.json())["version"] == 1
    status, issued = await mint_server.exchange(idp.token("bot-1", "satgate"))
    assert (status, issued["policy"], issued["budget_credits"]) == (200, "managed", 7)

    listed = (await (await client.get("/api/admin/policies", headers=admin)).json())["policies"]
    assert [(p["name"], p["source"], p["read_only"]) for p in listed] == [
        ("agents", "file", True),
        ("managed", "api", False),
    ]

    updated = await client.put(
        "/api/admin/policies/managed",
        headers=admin,
        json={"document": managed_policy(idp.issuer, budget=9), "expected_version": 1},
    )
    assert (await updated.json())["version"] == 2
    assert (await mint_server.exchange(idp.token("bot-1", "satgate")))[1]["budget_credits"] == 9
    stale = await client.put(
        "/api/admin/policies/managed",
        headers=admin,
        json={"document": managed_policy(idp.issuer), "expected_version": 1},
    )
    assert stale.status == 409

    assert (await client.post("/api/admin/policies/managed/disable", headers=admin)).status == 200
    status, refused = await mint_server.exchange(idp.token("bot-1", "satgate"))
    assert (status, refused["error"]) == (403, "policy_disabled")
    assert (await client.post("/api/admin/policies/managed/enable", headers=admin)).status == 200
    assert (await mint_server.exchange(idp.token("bot-1", "satgate")))[0] == 200

    history = (await (await client.get("/api/admin/policies/managed/history", headers=admin)).json())["versions"]
    assert [(v["version"], v["action"]) for v in history] == [
        (1, "create"),
        (2, "update"),
        (3, "disable"),
        (4, "enable"),
    ]
    assert history[0]["document"]["trust_rules"][0]["issue"]["budget_credits"] == 7
    assert (await client.delete("/api/admin/policies/managed", headers=admin)).status == 200
    assert (await mint_server.exchange(idp.token("bot-1", "satgate")))[0] == 403
    changes = [r for r in await mint_server.audit() if r["type"] == "policy_change"]
    assert [r["details"]["action"] for r in changes] == ["create", "update", "disable", "enable", "delete"]


async def test_policy_changes_are_validated_as_files_are(idp, mint_server, keyring):
    admin = bearer(admin_token(keyring))
    client = mint_server.client
    bad_ttl = managed_policy(idp.issuer)
    bad_ttl["trust_rules"][0]["issue"]["ttl"] = "forever"
    unknown_field = {**managed_policy(idp.issuer), "trust_rulez": []}
    bad_caveat = managed_policy(idp.issuer)
    bad_caveat["trust_rules"][0]["issue"]["caveats"] = {"region": "eu"}
    host_path = {**managed_policy(idp.issuer), "bearer_token_file": "/etc/shadow", "ca_file": "/etc/ssl/ca.pem"}
    other_tenant = {**managed_policy(idp.issuer), "tenant": "globex"}
    for document, field in (
        (bad_ttl, "trust_rules.0.issue.ttl"),
        (unknown_field, "trust_rulez"),
        (bad_caveat, "caveats.region"),
        (host_path, "bearer_token_file"),
        (other_tenant, "tenant"),
    ):
        response = await client.post("/api/admin/policies", headers=admin, json={"document": document})
        body = await response.json()
        assert (response.status, body["error"]) == (400, "invalid_policy"), body
        assert field in body["message"], body["message"]
    file_policy = {**managed_policy(idp.issuer), "name": "agents"}
    response = await client.post("/api/admin/policies", headers=admin, json={"document": file_policy})
    assert response.status == 403 and "policy file" in (await response.json())["message"]
    assert (await client.post("/api/admin/policies/agents/disable", headers=admin)).status == 403
    assert (
        await client.post("/api/admin/policies", headers=admin, json={"document": managed_policy(idp.issuer)})
    ).status == 200
    again = await client.post("/api/admin/policies", headers=admin, json={"document": managed_policy(idp.issuer)})
    assert again.status == 409
    globex = bearer(admin_token(keyring, "globex"))
    assert (await client.get("/api/admin/policies/managed", headers=globex)).status == 404  # another tenant's


async def test_registry_lists_tokens_with_remaining_credits(idp, mint_server, keyring):
    admin = bearer(admin_token(keyring))
    _, issued = await mint_server.exchange(idp.token("agent-1", "satgate"))
    child = await (
        await mint_server.client.post("/api/mint/delegate", headers=bearer(issued["token"]), json={"budget_credits": 2})
    ).json()
    listed = (await (await mint_server.client.get("/api/admin/tokens", headers=admin)).json())["tokens"]
    assert [(t["token_id"], t["policy"], t["subject"], t["remaining"]) for t in listed] == [
        (issued["token_id"], "agents", "agent-1", 5)
    ]
    detail = await (await mint_server.client.get(f"/api/admin/tokens/{issued['token_id']}", headers=admin)).json()
    assert [(d["delegation_id"], d["remaining"]) for d in detail["delegations"]] == [(child["delegation_id"], 2)]
    await mint_server.client.post("/api/admin/revoke", headers=admin, json={"id": child["delegation_id"]})
    detail = await (await mint_server.client.get(f"/api/admin/tokens/{issued['token_id']}", headers=admin)).json()
    assert [d["revoked"] for d in detail["delegations"]] == [True] and detail["token"]["revoked"] is False
    other = bearer(admin_token(keyring, "globex"))
    assert (await (await mint_server.client.get("/api/admin/tokens", headers=other)).json())["tokens"] == []
    assert (await mint_server.client.get(f"/api/admin/tokens/{issued['token_id']}", headers=other)).status == 404


async def test_budget_change_is_honoured_by_the_next_debit(idp, mint_server, keyring, tmp_path):
    """The authz path debits the ledger with the buckets the token carries: a cut or top-up applies at once."""
    admin = bearer(admin_token(keyring))
    _, issued = await mint_server.exchange(idp.token("agent-1", "satgate"))  # budget 5
    token = TokenVerifier(keyring).verify(issued["token"])
    ledger = open_ledger(f"sqlite:///{tmp_path}/ledger.db")  # the file the Mint's fixture and authz would share

    async def debit(cost=1):
        return await ledger.debit(DebitRequest("acme", token.revocation_ids, token.buckets, cost))

    try:
        assert (await debit(3)).remaining == 2
        change = lambda delta: mint_server.client.post(  # noqa: E731
            "/api/admin/budgets", headers=admin, json={"id": issued["token_id"], "delta": delta, "reason": "q4"}
        )
        below = await change(-3)
        assert below.status == 409 and "at most 2" in (await below.json())["message"]
        cut = await change(-2)
        assert (await cut.json())["remaining"] == 0
        assert (await debit()).outcome is Outcome.INSUFFICIENT
        top_up = await change(10)
        assert (await top_up.json())["remaining"] == 10
        assert (await debit()).remaining == 9
        detail = await (await mint_server.client.get(f"/api/admin/tokens/{issued['token_id']}", headers=admin)).json()
        assert detail["token"]["remaining"] == 9
        assert [c["delta"] for c in detail["budget_changes"]] == [-2, 10]
        audited = [r for r in await mint_server.audit() if r["type"] == "budget_change"]
        assert [(r["token_id"], r["details"]["delta"]) for r in audited] == [
            (issued["token_id"], -2),
            (issued["token_id"], 10),
        ]
        zero = await change(0)
        assert zero.status == 400 and "delta" in (await zero.json())["message"]
        member = bearer(admin_token(keyring, "acme", MEMBER))
        assert (
            await mint_server.client.post(
                "/api/admin/budgets", headers=member, json={"id": issued["token_id"], "delta": 5}
            )
        ).status == 403
    finally:
        await ledger.close()


async def test_grpc_serves_the_same_operations(idp, mint_server, keyring):
    metadata = [("authorization", f"Bearer {admin_token(keyring)}")]
    _, issued = await mint_server.exchange(idp.token("agent-1", "satgate"))
    async with grpc.aio.insecure_channel(mint_server.grpc_target) as channel:
        stub = admin_pb2_grpc.AdminStub(channel)
        created = admin_pb2.CreatePolicyRequest()
        created.document.update(managed_policy(idp.issuer))
        version = await stub.CreatePolicy(created, metadata=metadata)
        assert (version.name, version.version, version.action) == ("managed", 1, "create")
        status, bot = await mint_server.exchange(idp.token("bot-1", "satgate"))
        assert (status, bot["budget_credits"]) == (200, 7)  # Struct numbers are doubles: still a whole budget
        tokens = await stub.ListTokens(admin_pb2.ListTokensRequest(policy="agents"), metadata=metadata)
        assert [(t.token_id, t.remaining) for t in tokens.tokens] == [(issued["token_id"], 5)]
        change = await stub.ChangeBudget(
            admin_pb2.ChangeBudgetRequest(id=issued["token_id"], delta=-5), metadata=metadata
        )
        assert change.remaining == 0
        with pytest.raises(grpc.aio.AioRpcError) as below:
            await stub.ChangeBudget(admin_pb2.ChangeBudgetRequest(id=issued["token_id"], delta=-1), metadata=metadata)
        assert below.value.code() == grpc.StatusCode.ABORTED
        with pytest.raises(grpc.aio.AioRpcError) as bad:
            await stub.GetToken(admin_pb2.GetTokenRequest(token_id="nope"), metadata=metadata)
        assert bad.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "token_id" in bad.value.details()
        audit = await stub.ExportAudit(admin_pb2.ExportAuditRequest(category="budget"), metadata=metadata)
        assert [json.loads(r)["type"] for r in audit.records] == ["budget_change"]
        usage = await stub.QueryUsage(admin_pb2.QueryUsageRequest(by="tenant", since="1h"), metadata=metadata)
        assert MessageToDict(usage)["by"] == "tenant"
        policies_seen = await stub.ListPolicies(admin_pb2.ListPoliciesRequest(), metadata=metadata)
        assert [(p.name, p.read_only) for p in policies_seen.policies] == [("agents", True), ("managed", False)]


async def test_audit_query_filters(idp, mint_server, keyring):
    admin = bearer(admin_token(keyring))
    await mint_server.exchange(idp.token("agent-1", "satgate"))
    records = lambda **q: mint_server.client.get("/api/admin/audit", headers=admin, params=q)  # noqa: E731
    by_type = (await (await records(type="exchange")).json())["records"]
    assert [r["type"] for r in by_type] == ["exchange"]
    by_category = (await (await records(category="admin")).json())["records"]
    assert {r["type"] for r in by_category} == {"admin_access"}
    recent = (await (await records(since="1h", limit="1")).json())["records"]
    assert len(recent) == 1
    bad = await records(category="everything")
    assert bad.status == 400 and "category" in (await bad.json())["message"]


def test_the_docs_table_lists_every_operation_with_its_role():
    from pathlib import Path

    text = (Path(__file__).resolve().parents[2] / "docs" / "admin-api.md").read_text()
    rows = re.findall(r"^\| `(\w+)` \| `(\w+) (\S+)` \| `([\w:]+)` \|", text, re.MULTILINE)
    assert rows == [(op.name, op.method, op.path, op.role) for op in OPERATIONS]


def test_the_documented_policy_is_valid():
    from pathlib import Path

    text = (Path(__file__).resolve().parents[2] / "docs" / "admin-api.md").read_text()
    document = yaml.safe_load(re.search(r"<<'YAML'\n(.*?)\nYAML", text, re.DOTALL).group(1))
    policy = validate_policy(document, frozenset(), tenant="acme")
    assert (policy.name, policy.tenant, policy.trust_rules[0].issue.budget_credits) == ("ci-bots", "acme", 500)


def test_every_event_type_has_a_category():
    from satgate.audit.chain import CATEGORIES, EVENT_CATEGORIES, EVENT_TYPES

    assert set(EVENT_CATEGORIES) == set(EVENT_TYPES)
    assert set(EVENT_CATEGORIES.values()) <= set(CATEGORIES)


async def test_refused_admin_calls_are_audited_in_aggregate_under_the_callers_tenant(mint_server, keyring):
    """A tenant admin probing ids its tenant does not hold: each refusal answered at once, counted, and written
    once per interval (a flood costs a row, not one per request)."""
    from mint_server.api.http import ADMIN

    admin = bearer(admin_token(keyring))
    for _ in range(3):
        assert (await mint_server.client.get(f"/api/admin/tokens/{HEX}", headers=admin)).status == 404
    bad = await mint_server.client.post("/api/admin/budgets", headers=admin, json={"id": HEX, "delta": 0})
    assert bad.status == 400
    await mint_server.client.app[ADMIN].refusals.flush()
    denied = [r for r in await mint_server.audit() if r["type"] == "admin_denied"]
    shown = sorted(
        (r["tenant"], r["details"]["operation"], r["details"]["status"], r["details"]["count"]) for r in denied
    )
    assert shown == [("acme", "GetToken", 404, 3)]  # a 400 for a malformed body is the caller's, not a probe
