from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ExchangeRequest(_message.Message):
    __slots__ = ("credentials", "aws")
    CREDENTIALS_FIELD_NUMBER: _ClassVar[int]
    AWS_FIELD_NUMBER: _ClassVar[int]
    credentials: str
    aws: AwsIamRequest
    def __init__(self, credentials: _Optional[str] = ..., aws: _Optional[_Union[AwsIamRequest, _Mapping]] = ...) -> None: ...

class AwsIamRequest(_message.Message):
    __slots__ = ("method", "url", "body", "headers")
    class HeadersEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    METHOD_FIELD_NUMBER: _ClassVar[int]
    URL_FIELD_NUMBER: _ClassVar[int]
    BODY_FIELD_NUMBER: _ClassVar[int]
    HEADERS_FIELD_NUMBER: _ClassVar[int]
    method: str
    url: str
    body: bytes
    headers: _containers.ScalarMap[str, str]
    def __init__(self, method: _Optional[str] = ..., url: _Optional[str] = ..., body: _Optional[bytes] = ..., headers: _Optional[_Mapping[str, str]] = ...) -> None: ...

class ExchangeResponse(_message.Message):
    __slots__ = ("token", "token_id", "tenant", "expires_at", "budget_credits", "caveats", "policy", "budget_window", "identity_budget")
    TOKEN_FIELD_NUMBER: _ClassVar[int]
    TOKEN_ID_FIELD_NUMBER: _ClassVar[int]
    TENANT_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    BUDGET_CREDITS_FIELD_NUMBER: _ClassVar[int]
    CAVEATS_FIELD_NUMBER: _ClassVar[int]
    POLICY_FIELD_NUMBER: _ClassVar[int]
    BUDGET_WINDOW_FIELD_NUMBER: _ClassVar[int]
    IDENTITY_BUDGET_FIELD_NUMBER: _ClassVar[int]
    token: str
    token_id: str
    tenant: str
    expires_at: str
    budget_credits: int
    caveats: _containers.RepeatedScalarFieldContainer[str]
    policy: str
    budget_window: str
    identity_budget: IdentityBudget
    def __init__(self, token: _Optional[str] = ..., token_id: _Optional[str] = ..., tenant: _Optional[str] = ..., expires_at: _Optional[str] = ..., budget_credits: _Optional[int] = ..., caveats: _Optional[_Iterable[str]] = ..., policy: _Optional[str] = ..., budget_window: _Optional[str] = ..., identity_budget: _Optional[_Union[IdentityBudget, _Mapping]] = ...) -> None: ...

class IdentityBudget(_message.Message):
    __slots__ = ("remaining", "resets_at", "period")
    REMAINING_FIELD_NUMBER: _ClassVar[int]
    RESETS_AT_FIELD_NUMBER: _ClassVar[int]
    PERIOD_FIELD_NUMBER: _ClassVar[int]
    remaining: int
    resets_at: str
    period: str
    def __init__(self, remaining: _Optional[int] = ..., resets_at: _Optional[str] = ..., period: _Optional[str] = ...) -> None: ...

class VerifyRequest(_message.Message):
    __slots__ = ("token",)
    TOKEN_FIELD_NUMBER: _ClassVar[int]
    token: str
    def __init__(self, token: _Optional[str] = ...) -> None: ...

class VerifyResponse(_message.Message):
    __slots__ = ("valid", "token_id", "tenant", "caveats", "remaining", "error", "resets_at")
    VALID_FIELD_NUMBER: _ClassVar[int]
    TOKEN_ID_FIELD_NUMBER: _ClassVar[int]
    TENANT_FIELD_NUMBER: _ClassVar[int]
    CAVEATS_FIELD_NUMBER: _ClassVar[int]
    REMAINING_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    RESETS_AT_FIELD_NUMBER: _ClassVar[int]
    valid: bool
    token_id: str
    tenant: str
    caveats: _containers.RepeatedScalarFieldContainer[str]
    remaining: int
    error: str
    resets_at: str
    def __init__(self, valid: _Optional[bool] = ..., token_id: _Optional[str] = ..., tenant: _Optional[str] = ..., caveats: _Optional[_Iterable[str]] = ..., remaining: _Optional[int] = ..., error: _Optional[str] = ..., resets_at: _Optional[str] = ...) -> None: ...

class DelegateRequest(_message.Message):
    __slots__ = ("budget_credits", "scopes", "ttl", "label", "caveats", "budget_window")
    class CaveatsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    BUDGET_CREDITS_FIELD_NUMBER: _ClassVar[int]
    SCOPES_FIELD_NUMBER: _ClassVar[int]
    TTL_FIELD_NUMBER: _ClassVar[int]
    LABEL_FIELD_NUMBER: _ClassVar[int]
    CAVEATS_FIELD_NUMBER: _ClassVar[int]
    BUDGET_WINDOW_FIELD_NUMBER: _ClassVar[int]
    budget_credits: int
    scopes: _containers.RepeatedScalarFieldContainer[str]
    ttl: str
    label: str
    caveats: _containers.ScalarMap[str, str]
    budget_window: str
    def __init__(self, budget_credits: _Optional[int] = ..., scopes: _Optional[_Iterable[str]] = ..., ttl: _Optional[str] = ..., label: _Optional[str] = ..., caveats: _Optional[_Mapping[str, str]] = ..., budget_window: _Optional[str] = ...) -> None: ...

class DelegateResponse(_message.Message):
    __slots__ = ("token", "token_id", "delegation_id", "parent_delegation_id", "tenant", "expires_at", "caveats")
    TOKEN_FIELD_NUMBER: _ClassVar[int]
    TOKEN_ID_FIELD_NUMBER: _ClassVar[int]
    DELEGATION_ID_FIELD_NUMBER: _ClassVar[int]
    PARENT_DELEGATION_ID_FIELD_NUMBER: _ClassVar[int]
    TENANT_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    CAVEATS_FIELD_NUMBER: _ClassVar[int]
    token: str
    token_id: str
    delegation_id: str
    parent_delegation_id: str
    tenant: str
    expires_at: str
    caveats: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, token: _Optional[str] = ..., token_id: _Optional[str] = ..., delegation_id: _Optional[str] = ..., parent_delegation_id: _Optional[str] = ..., tenant: _Optional[str] = ..., expires_at: _Optional[str] = ..., caveats: _Optional[_Iterable[str]] = ...) -> None: ...
