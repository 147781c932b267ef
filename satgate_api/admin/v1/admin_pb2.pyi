from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ListPoliciesRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class PolicyName(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class Policy(_message.Message):
    __slots__ = ("name", "tenant", "provider", "disabled", "source", "read_only", "version", "document", "state")
    NAME_FIELD_NUMBER: _ClassVar[int]
    TENANT_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_FIELD_NUMBER: _ClassVar[int]
    DISABLED_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    READ_ONLY_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    DOCUMENT_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    name: str
    tenant: str
    provider: str
    disabled: bool
    source: str
    read_only: bool
    version: int
    document: _struct_pb2.Struct
    state: str
    def __init__(self, name: _Optional[str] = ..., tenant: _Optional[str] = ..., provider: _Optional[str] = ..., disabled: _Optional[bool] = ..., source: _Optional[str] = ..., read_only: _Optional[bool] = ..., version: _Optional[int] = ..., document: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., state: _Optional[str] = ...) -> None: ...

class ListPoliciesResponse(_message.Message):
    __slots__ = ("policies",)
    POLICIES_FIELD_NUMBER: _ClassVar[int]
    policies: _containers.RepeatedCompositeFieldContainer[Policy]
    def __init__(self, policies: _Optional[_Iterable[_Union[Policy, _Mapping]]] = ...) -> None: ...

class PolicyVersion(_message.Message):
    __slots__ = ("name", "version", "tenant", "action", "document", "created_at", "actor")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    TENANT_FIELD_NUMBER: _ClassVar[int]
    ACTION_FIELD_NUMBER: _ClassVar[int]
    DOCUMENT_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    name: str
    version: int
    tenant: str
    action: str
    document: _struct_pb2.Struct
    created_at: float
    actor: str
    def __init__(self, name: _Optional[str] = ..., version: _Optional[int] = ..., tenant: _Optional[str] = ..., action: _Optional[str] = ..., document: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., created_at: _Optional[float] = ..., actor: _Optional[str] = ...) -> None: ...

class PolicyHistoryResponse(_message.Message):
    __slots__ = ("versions",)
    VERSIONS_FIELD_NUMBER: _ClassVar[int]
    versions: _containers.RepeatedCompositeFieldContainer[PolicyVersion]
    def __init__(self, versions: _Optional[_Iterable[_Union[PolicyVersion, _Mapping]]] = ...) -> None: ...

class CreatePolicyRequest(_message.Message):
    __slots__ = ("document",)
    DOCUMENT_FIELD_NUMBER: _ClassVar[int]
    document: _struct_pb2.Struct
    def __init__(self, document: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ...) -> None: ...

class UpdatePolicyRequest(_message.Message):
    __slots__ = ("name", "document", "expected_version")
    NAME_FIELD_NUMBER: _ClassVar[int]
    DOCUMENT_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_VERSION_FIELD_NUMBER: _ClassVar[int]
    name: str
    document: _struct_pb2.Struct
    expected_version: int
    def __init__(self, name: _Optional[str] = ..., document: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., expected_version: _Optional[int] = ...) -> None: ...

class RevokePolicyRequest(_message.Message):
    __slots__ = ("name", "reason", "revoke_tokens")
    NAME_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    REVOKE_TOKENS_FIELD_NUMBER: _ClassVar[int]
    name: str
    reason: str
    revoke_tokens: bool
    def __init__(self, name: _Optional[str] = ..., reason: _Optional[str] = ..., revoke_tokens: _Optional[bool] = ...) -> None: ...

class RevokePolicyResponse(_message.Message):
    __slots__ = ("policy", "revoked", "already_revoked", "tokens_revoked")
    POLICY_FIELD_NUMBER: _ClassVar[int]
    REVOKED_FIELD_NUMBER: _ClassVar[int]
    ALREADY_REVOKED_FIELD_NUMBER: _ClassVar[int]
    TOKENS_REVOKED_FIELD_NUMBER: _ClassVar[int]
    policy: str
    revoked: bool
    already_revoked: bool
    tokens_revoked: int
    def __init__(self, policy: _Optional[str] = ..., revoked: _Optional[bool] = ..., already_revoked: _Optional[bool] = ..., tokens_revoked: _Optional[int] = ...) -> None: ...

class ListTokensRequest(_message.Message):
    __slots__ = ("policy", "label", "before", "limit")
    POLICY_FIELD_NUMBER: _ClassVar[int]
    LABEL_FIELD_NUMBER: _ClassVar[int]
    BEFORE_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    policy: str
    label: str
    before: float
    limit: int
    def __init__(self, policy: _Optional[str] = ..., label: _Optional[str] = ..., before: _Optional[float] = ..., limit: _Optional[int] = ...) -> None: ...

class Token(_message.Message):
    __slots__ = ("tenant", "token_id", "issued_at", "source", "policy", "subject", "label", "budget_credits", "bucket_id", "scopes", "expires_at", "remaining", "revoked", "budget_window", "window_bucket_id", "window", "budget_per", "budget_rule", "budget_period", "budget_limit", "budget_resets_at")
    TENANT_FIELD_NUMBER: _ClassVar[int]
    TOKEN_ID_FIELD_NUMBER: _ClassVar[int]
    ISSUED_AT_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    POLICY_FIELD_NUMBER: _ClassVar[int]
    SUBJECT_FIELD_NUMBER: _ClassVar[int]
    LABEL_FIELD_NUMBER: _ClassVar[int]
    BUDGET_CREDITS_FIELD_NUMBER: _ClassVar[int]
    BUCKET_ID_FIELD_NUMBER: _ClassVar[int]
    SCOPES_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    REMAINING_FIELD_NUMBER: _ClassVar[int]
    REVOKED_FIELD_NUMBER: _ClassVar[int]
    BUDGET_WINDOW_FIELD_NUMBER: _ClassVar[int]
    WINDOW_BUCKET_ID_FIELD_NUMBER: _ClassVar[int]
    WINDOW_FIELD_NUMBER: _ClassVar[int]
    BUDGET_PER_FIELD_NUMBER: _ClassVar[int]
    BUDGET_RULE_FIELD_NUMBER: _ClassVar[int]
    BUDGET_PERIOD_FIELD_NUMBER: _ClassVar[int]
    BUDGET_LIMIT_FIELD_NUMBER: _ClassVar[int]
    BUDGET_RESETS_AT_FIELD_NUMBER: _ClassVar[int]
    tenant: str
    token_id: str
    issued_at: float
    source: str
    policy: str
    subject: str
    label: str
    budget_credits: int
    bucket_id: str
    scopes: str
    expires_at: str
    remaining: int
    revoked: bool
    budget_window: str
    window_bucket_id: str
    window: BudgetWindowState
    budget_per: str
    budget_rule: str
    budget_period: str
    budget_limit: int
    budget_resets_at: str
    def __init__(self, tenant: _Optional[str] = ..., token_id: _Optional[str] = ..., issued_at: _Optional[float] = ..., source: _Optional[str] = ..., policy: _Optional[str] = ..., subject: _Optional[str] = ..., label: _Optional[str] = ..., budget_credits: _Optional[int] = ..., bucket_id: _Optional[str] = ..., scopes: _Optional[str] = ..., expires_at: _Optional[str] = ..., remaining: _Optional[int] = ..., revoked: _Optional[bool] = ..., budget_window: _Optional[str] = ..., window_bucket_id: _Optional[str] = ..., window: _Optional[_Union[BudgetWindowState, _Mapping]] = ..., budget_per: _Optional[str] = ..., budget_rule: _Optional[str] = ..., budget_period: _Optional[str] = ..., budget_limit: _Optional[int] = ..., budget_resets_at: _Optional[str] = ...) -> None: ...

class BudgetWindowState(_message.Message):
    __slots__ = ("credits", "period", "window_start", "resets_at", "remaining")
    CREDITS_FIELD_NUMBER: _ClassVar[int]
    PERIOD_FIELD_NUMBER: _ClassVar[int]
    WINDOW_START_FIELD_NUMBER: _ClassVar[int]
    RESETS_AT_FIELD_NUMBER: _ClassVar[int]
    REMAINING_FIELD_NUMBER: _ClassVar[int]
    credits: int
    period: str
    window_start: str
    resets_at: str
    remaining: int
    def __init__(self, credits: _Optional[int] = ..., period: _Optional[str] = ..., window_start: _Optional[str] = ..., resets_at: _Optional[str] = ..., remaining: _Optional[int] = ...) -> None: ...

class ListTokensResponse(_message.Message):
    __slots__ = ("tokens", "next_before")
    TOKENS_FIELD_NUMBER: _ClassVar[int]
    NEXT_BEFORE_FIELD_NUMBER: _ClassVar[int]
    tokens: _containers.RepeatedCompositeFieldContainer[Token]
    next_before: float
    def __init__(self, tokens: _Optional[_Iterable[_Union[Token, _Mapping]]] = ..., next_before: _Optional[float] = ...) -> None: ...

class GetTokenRequest(_message.Message):
    __slots__ = ("token_id",)
    TOKEN_ID_FIELD_NUMBER: _ClassVar[int]
    token_id: str
    def __init__(self, token_id: _Optional[str] = ...) -> None: ...

class Delegation(_message.Message):
    __slots__ = ("delegation_id", "token_id", "parent_delegation_id", "created_at", "actor", "label", "budget_credits", "scopes", "expires_at", "bucket_id", "tenant", "remaining", "revoked", "budget_window", "window_bucket_id", "window")
    DELEGATION_ID_FIELD_NUMBER: _ClassVar[int]
    TOKEN_ID_FIELD_NUMBER: _ClassVar[int]
    PARENT_DELEGATION_ID_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    LABEL_FIELD_NUMBER: _ClassVar[int]
    BUDGET_CREDITS_FIELD_NUMBER: _ClassVar[int]
    SCOPES_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    BUCKET_ID_FIELD_NUMBER: _ClassVar[int]
    TENANT_FIELD_NUMBER: _ClassVar[int]
    REMAINING_FIELD_NUMBER: _ClassVar[int]
    REVOKED_FIELD_NUMBER: _ClassVar[int]
    BUDGET_WINDOW_FIELD_NUMBER: _ClassVar[int]
    WINDOW_BUCKET_ID_FIELD_NUMBER: _ClassVar[int]
    WINDOW_FIELD_NUMBER: _ClassVar[int]
    delegation_id: str
    token_id: str
    parent_delegation_id: str
    created_at: float
    actor: str
    label: str
    budget_credits: int
    scopes: str
    expires_at: str
    bucket_id: str
    tenant: str
    remaining: int
    revoked: bool
    budget_window: str
    window_bucket_id: str
    window: BudgetWindowState
    def __init__(self, delegation_id: _Optional[str] = ..., token_id: _Optional[str] = ..., parent_delegation_id: _Optional[str] = ..., created_at: _Optional[float] = ..., actor: _Optional[str] = ..., label: _Optional[str] = ..., budget_credits: _Optional[int] = ..., scopes: _Optional[str] = ..., expires_at: _Optional[str] = ..., bucket_id: _Optional[str] = ..., tenant: _Optional[str] = ..., remaining: _Optional[int] = ..., revoked: _Optional[bool] = ..., budget_window: _Optional[str] = ..., window_bucket_id: _Optional[str] = ..., window: _Optional[_Union[BudgetWindowState, _Mapping]] = ...) -> None: ...

class GetTokenResponse(_message.Message):
    __slots__ = ("token", "delegations", "budget_changes")
    TOKEN_FIELD_NUMBER: _ClassVar[int]
    DELEGATIONS_FIELD_NUMBER: _ClassVar[int]
    BUDGET_CHANGES_FIELD_NUMBER: _ClassVar[int]
    token: Token
    delegations: _containers.RepeatedCompositeFieldContainer[Delegation]
    budget_changes: _containers.RepeatedCompositeFieldContainer[BudgetChange]
    def __init__(self, token: _Optional[_Union[Token, _Mapping]] = ..., delegations: _Optional[_Iterable[_Union[Delegation, _Mapping]]] = ..., budget_changes: _Optional[_Iterable[_Union[BudgetChange, _Mapping]]] = ...) -> None: ...

class ChangeBudgetRequest(_message.Message):
    __slots__ = ("id", "delta", "reason", "bucket")
    ID_FIELD_NUMBER: _ClassVar[int]
    DELTA_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    BUCKET_FIELD_NUMBER: _ClassVar[int]
    id: str
    delta: int
    reason: str
    bucket: str
    def __init__(self, id: _Optional[str] = ..., delta: _Optional[int] = ..., reason: _Optional[str] = ..., bucket: _Optional[str] = ...) -> None: ...

class BudgetChange(_message.Message):
    __slots__ = ("tenant", "target_id", "bucket_id", "delta", "remaining", "actor", "reason", "changed_at")
    TENANT_FIELD_NUMBER: _ClassVar[int]
    TARGET_ID_FIELD_NUMBER: _ClassVar[int]
    BUCKET_ID_FIELD_NUMBER: _ClassVar[int]
    DELTA_FIELD_NUMBER: _ClassVar[int]
    REMAINING_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    CHANGED_AT_FIELD_NUMBER: _ClassVar[int]
    tenant: str
    target_id: str
    bucket_id: str
    delta: int
    remaining: int
    actor: str
    reason: str
    changed_at: float
    def __init__(self, tenant: _Optional[str] = ..., target_id: _Optional[str] = ..., bucket_id: _Optional[str] = ..., delta: _Optional[int] = ..., remaining: _Optional[int] = ..., actor: _Optional[str] = ..., reason: _Optional[str] = ..., changed_at: _Optional[float] = ...) -> None: ...

class RevokeRequest(_message.Message):
    __slots__ = ("id", "reason", "pre_revoke")
    ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    PRE_REVOKE_FIELD_NUMBER: _ClassVar[int]
    id: str
    reason: str
    pre_revoke: bool
    def __init__(self, id: _Optional[str] = ..., reason: _Optional[str] = ..., pre_revoke: _Optional[bool] = ...) -> None: ...

class RevokeResponse(_message.Message):
    __slots__ = ("revoked", "tenant", "already_revoked", "known_delegations", "recorded_as")
    REVOKED_FIELD_NUMBER: _ClassVar[int]
    TENANT_FIELD_NUMBER: _ClassVar[int]
    ALREADY_REVOKED_FIELD_NUMBER: _ClassVar[int]
    KNOWN_DELEGATIONS_FIELD_NUMBER: _ClassVar[int]
    RECORDED_AS_FIELD_NUMBER: _ClassVar[int]
    revoked: str
    tenant: str
    already_revoked: bool
    known_delegations: _containers.RepeatedScalarFieldContainer[str]
    recorded_as: str
    def __init__(self, revoked: _Optional[str] = ..., tenant: _Optional[str] = ..., already_revoked: _Optional[bool] = ..., known_delegations: _Optional[_Iterable[str]] = ..., recorded_as: _Optional[str] = ...) -> None: ...

class ListDelegationsRequest(_message.Message):
    __slots__ = ("token_id", "delegation_id")
    TOKEN_ID_FIELD_NUMBER: _ClassVar[int]
    DELEGATION_ID_FIELD_NUMBER: _ClassVar[int]
    token_id: str
    delegation_id: str
    def __init__(self, token_id: _Optional[str] = ..., delegation_id: _Optional[str] = ...) -> None: ...

class ListDelegationsResponse(_message.Message):
    __slots__ = ("delegations",)
    DELEGATIONS_FIELD_NUMBER: _ClassVar[int]
    delegations: _containers.RepeatedCompositeFieldContainer[Delegation]
    def __init__(self, delegations: _Optional[_Iterable[_Union[Delegation, _Mapping]]] = ...) -> None: ...

class QueryUsageRequest(_message.Message):
    __slots__ = ("by", "since")
    BY_FIELD_NUMBER: _ClassVar[int]
    SINCE_FIELD_NUMBER: _ClassVar[int]
    by: str
    since: str
    def __init__(self, by: _Optional[str] = ..., since: _Optional[str] = ...) -> None: ...

class UsageRow(_message.Message):
    __slots__ = ("key", "requests", "allowed", "denied", "credits")
    KEY_FIELD_NUMBER: _ClassVar[int]
    REQUESTS_FIELD_NUMBER: _ClassVar[int]
    ALLOWED_FIELD_NUMBER: _ClassVar[int]
    DENIED_FIELD_NUMBER: _ClassVar[int]
    CREDITS_FIELD_NUMBER: _ClassVar[int]
    key: str
    requests: int
    allowed: int
    denied: int
    credits: int
    def __init__(self, key: _Optional[str] = ..., requests: _Optional[int] = ..., allowed: _Optional[int] = ..., denied: _Optional[int] = ..., credits: _Optional[int] = ...) -> None: ...

class QueryUsageResponse(_message.Message):
    __slots__ = ("by", "since", "rows")
    BY_FIELD_NUMBER: _ClassVar[int]
    SINCE_FIELD_NUMBER: _ClassVar[int]
    ROWS_FIELD_NUMBER: _ClassVar[int]
    by: str
    since: str
    rows: _containers.RepeatedCompositeFieldContainer[UsageRow]
    def __init__(self, by: _Optional[str] = ..., since: _Optional[str] = ..., rows: _Optional[_Iterable[_Union[UsageRow, _Mapping]]] = ...) -> None: ...

class ExportAuditRequest(_message.Message):
    __slots__ = ("type", "category", "since", "limit", "format")
    TYPE_FIELD_NUMBER: _ClassVar[int]
    CATEGORY_FIELD_NUMBER: _ClassVar[int]
    SINCE_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    FORMAT_FIELD_NUMBER: _ClassVar[int]
    type: str
    category: str
    since: str
    limit: int
    format: str
    def __init__(self, type: _Optional[str] = ..., category: _Optional[str] = ..., since: _Optional[str] = ..., limit: _Optional[int] = ..., format: _Optional[str] = ...) -> None: ...

class ExportAuditResponse(_message.Message):
    __slots__ = ("records",)
    RECORDS_FIELD_NUMBER: _ClassVar[int]
    records: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, records: _Optional[_Iterable[str]] = ...) -> None: ...

class ListIdentityBudgetsRequest(_message.Message):
    __slots__ = ("policy",)
    POLICY_FIELD_NUMBER: _ClassVar[int]
    policy: str
    def __init__(self, policy: _Optional[str] = ...) -> None: ...

class IdentityBudget(_message.Message):
    __slots__ = ("rule", "kind", "bucket_id", "period", "identities", "tokens", "limit", "remaining", "resets_at")
    RULE_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    BUCKET_ID_FIELD_NUMBER: _ClassVar[int]
    PERIOD_FIELD_NUMBER: _ClassVar[int]
    IDENTITIES_FIELD_NUMBER: _ClassVar[int]
    TOKENS_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    REMAINING_FIELD_NUMBER: _ClassVar[int]
    RESETS_AT_FIELD_NUMBER: _ClassVar[int]
    rule: str
    kind: str
    bucket_id: str
    period: str
    identities: _containers.RepeatedScalarFieldContainer[str]
    tokens: int
    limit: int
    remaining: int
    resets_at: str
    def __init__(self, rule: _Optional[str] = ..., kind: _Optional[str] = ..., bucket_id: _Optional[str] = ..., period: _Optional[str] = ..., identities: _Optional[_Iterable[str]] = ..., tokens: _Optional[int] = ..., limit: _Optional[int] = ..., remaining: _Optional[int] = ..., resets_at: _Optional[str] = ...) -> None: ...

class ListIdentityBudgetsResponse(_message.Message):
    __slots__ = ("policy", "budgets")
    POLICY_FIELD_NUMBER: _ClassVar[int]
    BUDGETS_FIELD_NUMBER: _ClassVar[int]
    policy: str
    budgets: _containers.RepeatedCompositeFieldContainer[IdentityBudget]
    def __init__(self, policy: _Optional[str] = ..., budgets: _Optional[_Iterable[_Union[IdentityBudget, _Mapping]]] = ...) -> None: ...

class ChangeIdentityBudgetRequest(_message.Message):
    __slots__ = ("policy", "identity", "delta", "reason", "kind")
    POLICY_FIELD_NUMBER: _ClassVar[int]
    IDENTITY_FIELD_NUMBER: _ClassVar[int]
    DELTA_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    policy: str
    identity: str
    delta: int
    reason: str
    kind: str
    def __init__(self, policy: _Optional[str] = ..., identity: _Optional[str] = ..., delta: _Optional[int] = ..., reason: _Optional[str] = ..., kind: _Optional[str] = ...) -> None: ...
