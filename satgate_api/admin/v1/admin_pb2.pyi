from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

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

class Delegation(_message.Message):
    __slots__ = ("delegation_id", "token_id", "parent_delegation_id", "created_at", "actor", "label", "budget_credits", "scopes", "expires_at")
    DELEGATION_ID_FIELD_NUMBER: _ClassVar[int]
    TOKEN_ID_FIELD_NUMBER: _ClassVar[int]
    PARENT_DELEGATION_ID_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    LABEL_FIELD_NUMBER: _ClassVar[int]
    BUDGET_CREDITS_FIELD_NUMBER: _ClassVar[int]
    SCOPES_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    delegation_id: str
    token_id: str
    parent_delegation_id: str
    created_at: float
    actor: str
    label: str
    budget_credits: int
    scopes: str
    expires_at: str
    def __init__(self, delegation_id: _Optional[str] = ..., token_id: _Optional[str] = ..., parent_delegation_id: _Optional[str] = ..., created_at: _Optional[float] = ..., actor: _Optional[str] = ..., label: _Optional[str] = ..., budget_credits: _Optional[int] = ..., scopes: _Optional[str] = ..., expires_at: _Optional[str] = ...) -> None: ...

class ListDelegationsResponse(_message.Message):
    __slots__ = ("delegations",)
    DELEGATIONS_FIELD_NUMBER: _ClassVar[int]
    delegations: _containers.RepeatedCompositeFieldContainer[Delegation]
    def __init__(self, delegations: _Optional[_Iterable[_Union[Delegation, _Mapping]]] = ...) -> None: ...

class RevokePolicyRequest(_message.Message):
    __slots__ = ("name", "reason")
    NAME_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    name: str
    reason: str
    def __init__(self, name: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class RevokePolicyResponse(_message.Message):
    __slots__ = ("policy", "already_revoked")
    POLICY_FIELD_NUMBER: _ClassVar[int]
    ALREADY_REVOKED_FIELD_NUMBER: _ClassVar[int]
    policy: str
    already_revoked: bool
    def __init__(self, policy: _Optional[str] = ..., already_revoked: _Optional[bool] = ...) -> None: ...

class ExportAuditRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ExportAuditResponse(_message.Message):
    __slots__ = ("records",)
    RECORDS_FIELD_NUMBER: _ClassVar[int]
    records: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, records: _Optional[_Iterable[str]] = ...) -> None: ...
