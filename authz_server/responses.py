"""Step 7: decisions as Answers — what Envoy must do with the request, in no transport's format. The gRPC
transport writes an Answer as a CheckResponse, the HTTP transport as an HTTP response; neither adds a rule."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from satgate.caveats import Denial
from satgate.mcp import JSONRPC_CODES, McpRequest, error_body

WWW_AUTHENTICATE = 'Bearer realm="satgate", error="invalid_token"'
SATGATE_HEADER_PREFIX = "x-satgate-"
# The HTTP transport's access-log metadata: response headers Envoy copies (dynamic_metadata_from_headers)
LOG_HEADER_PREFIX = "x-satgate-log-"
BUDGET_RESET_HEADER = "x-satgate-budget-reset"  # a 402 that only a window's end lifts: when (RFC 3339)
_DENY_HEADERS = (("content-type", "application/json"), ("cache-control", "no-store"))
_DENY_401_HEADERS = (*_DENY_HEADERS, ("www-authenticate", WWW_AUTHENTICATE))


@dataclass(frozen=True, slots=True)
class Answer:
    """One decision as Envoy applies it. An allow (200) sets `upstream_headers` on the request (overwriting),
    removes `remove_headers` from it and adds `downstream_headers` to the client's response; a refusal answers the
    client with its status, `downstream_headers` and `body`. `metadata` is Envoy's dynamic metadata (access log)."""

    status: int
    error: str | None = None
    upstream_headers: tuple[tuple[str, str], ...] = ()
    remove_headers: tuple[str, ...] = ()
    downstream_headers: tuple[tuple[str, str], ...] = ()
    body: str = ""
    metadata: Mapping[str, str | int] = field(default_factory=dict)

    @property
    def allowed(self) -> bool:
        return self.status == 200


@dataclass(frozen=True, slots=True)
class TokenHeaders:
    """What an allow says of the token alone — its id, tenant and sealed attributes: built once per token."""

    leading: tuple[tuple[str, str], ...]  # token id, tenant
    trailing: tuple[tuple[str, str], ...]  # one x-satgate-attr-<key> per attribute
    names: frozenset[str]  # every upstream header an allow sets, the per-request credit headers too
    attributes: Mapping[str, str]  # the same attributes, for usage attribution

    @classmethod
    def of(cls, token_id: str, tenant: str, attributes: Mapping[str, str]) -> TokenHeaders:
        leading = (("x-satgate-token-id", token_id), ("x-satgate-tenant", tenant))
        if not attributes:  # most tokens: a new one every request must not cost a set built per token
            return cls(leading, (), _BASE_NAMES, attributes)
        trailing = tuple((f"x-satgate-attr-{key}", value) for key, value in attributes.items())
        return cls(leading, trailing, _BASE_NAMES | {name for name, _value in trailing}, attributes)


_BASE_NAMES = frozenset(
    {"x-satgate-token-id", "x-satgate-tenant", "x-satgate-credits-charged", "x-satgate-credits-remaining"}
)


@dataclass(frozen=True, slots=True)
class Allow:
    token: TokenHeaders
    charged: int
    remaining: int | None


def is_satgate_header(name: str) -> bool:
    """Whether a header name is, or could pass for, one of ours: case and '_' for '-' are what CGI/WSGI-style
    upstreams fold (x-satgate_tenant and X_SATGATE_TENANT both reach them as HTTP_X_SATGATE_TENANT)."""
    return name[:10].lower().replace("_", "-") == SATGATE_HEADER_PREFIX


def spoofed_headers(request_headers: Iterable[str], ours: frozenset[str]) -> tuple[str, ...]:
    """Client-sent x-satgate-* headers (or look-alikes) that an allow does not set itself: removed."""
    return tuple(h for h in request_headers if h[:1] in "xX" and is_satgate_header(h) and h not in ours)


def allow_answer(allow: Allow, request_headers: Iterable[str]) -> Answer:
    remaining = "unlimited" if allow.remaining is None else str(allow.remaining)
    token = allow.token
    credits = (("x-satgate-credits-charged", str(allow.charged)), ("x-satgate-credits-remaining", remaining))
    # Overwriting covers the headers we set; any other client-sent x-satgate-* (or look-alike) is a spoof attempt.
    spoofed = spoofed_headers(request_headers, token.names)
    token_id, tenant = token.leading[0][1], token.leading[1][1]
    return Answer(
        200,
        upstream_headers=(*token.leading, *credits, *token.trailing),
        remove_headers=("authorization", *spoofed),
        downstream_headers=(credits[1],),
        metadata={"token_id": token_id, "tenant": tenant, "charged": allow.charged, "remaining": remaining},
    )


def deny_body(denial: Denial, request_id: str, extra: Mapping[str, object]) -> dict[str, object]:
    body: dict[str, object] = {"error": denial.error, "message": denial.message, "request_id": request_id}
    if denial.caveat is not None:
        body["caveat"] = denial.caveat
    body.update(extra)
    return body


@dataclass(frozen=True, slots=True)
class Reply:
    """How a refusal is written: plain JSON, or on MCP routes JSON-RPC 2.0 error(s) with the request ids."""

    mcp: bool = False
    request: McpRequest | None = None
    code: int | None = None  # a JSON-RPC code for body errors (-32700 parse, -32600 invalid, -32602 params)


def deny_answer(
    denial: Denial,
    request_id: str,
    *,
    extra: Mapping[str, object] | None = None,
    token_id: str | None = None,
    tenant: str | None = None,
    reply: Reply | None = None,
    headers: tuple[tuple[str, str], ...] = (),
) -> Answer:
    body: object = deny_body(denial, request_id, extra or {})
    if reply is not None and reply.mcp:
        code = reply.code if reply.code is not None else JSONRPC_CODES.get(denial.status, -32000)
        body = error_body(reply.request, code, denial.message, body)  # type: ignore[arg-type]
    metadata = {"error": denial.error, "token_id": token_id, "tenant": tenant}
    return Answer(
        denial.status,
        denial.error,
        downstream_headers=(*(_DENY_401_HEADERS if denial.status == 401 else _DENY_HEADERS), *headers),
        body=json.dumps(body, separators=(",", ":")),
        metadata={k: v for k, v in metadata.items() if v is not None},
    )
