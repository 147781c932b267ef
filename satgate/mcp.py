"""MCP over Streamable HTTP: read the JSON-RPC 2.0 body Envoy buffered for the check (SPEC: `mcp`, `pricing`,
`tools`). Reading is defensive — size, depth and shape are bounded, and anything else is a clear refusal."""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

MAX_BODY_BYTES = 1024 * 1024
MAX_BATCH = 100
MAX_TOOL_NAME = 128
MAX_SAFE_INTEGER = 2**53 - 1  # beyond it a JavaScript MCP server reads another number than we do


class _Ambiguous(ValueError):
    """JSON that parsers read differently: we refuse it rather than judge one reading and forward another."""


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    doc = dict(pairs)
    if len(doc) != len(pairs):  # first or last wins depending on the parser: the tool we price may not be called
        raise _Ambiguous("a key appears twice in one object")
    return doc


def _no_constant(name: str) -> Any:
    raise _Ambiguous(f"{name} is not JSON")


def _finite(text: str) -> float:
    value = float(text)
    if value in (float("inf"), float("-inf")):
        raise _Ambiguous("a number out of range")
    return value


def _safe_int(text: str) -> int:
    value = int(text)
    if abs(value) > MAX_SAFE_INTEGER:
        raise _Ambiguous("an integer beyond 2^53")
    return value


def _plain_name(name: str) -> bool:
    """No control, format, surrogate or unassigned characters: what logs, tables and other parsers agree on."""
    return all(unicodedata.category(c)[0] != "C" for c in name)


class McpBodyError(ValueError):
    """The body is not a JSON-RPC request we can judge. `code` is the JSON-RPC error code to answer with."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True, slots=True)
class McpCall:
    id: Any  # the JSON-RPC id (None for notifications)
    method: str
    tool: str | None  # for tools/call


@dataclass(frozen=True, slots=True)
class McpRequest:
    calls: tuple[McpCall, ...]
    batch: bool

    @property
    def tools(self) -> tuple[str, ...]:
        return tuple(call.tool for call in self.calls if call.tool is not None)

    @property
    def ids(self) -> tuple[Any, ...]:
        return tuple(call.id for call in self.calls)


def parse(body: bytes, content_type: str) -> McpRequest:
    if content_type.split(";", 1)[0].strip().lower() != "application/json":
        raise McpBodyError(-32600, "MCP requests must be application/json")
    if len(body) > MAX_BODY_BYTES:
        raise McpBodyError(-32600, f"request body larger than {MAX_BODY_BYTES} bytes")
    try:
        doc = json.loads(
            body,
            object_pairs_hook=_unique_keys,
            parse_constant=_no_constant,
            parse_float=_finite,
            parse_int=_safe_int,
        )
    except _Ambiguous as exc:
        raise McpBodyError(-32700, f"request body is ambiguous JSON: {exc}") from None
    except (ValueError, RecursionError):  # RecursionError: absurdly deep nesting
        raise McpBodyError(-32700, "request body is not valid JSON") from None
    if isinstance(doc, list):
        if not doc or len(doc) > MAX_BATCH:
            raise McpBodyError(-32600, f"a batch holds 1..{MAX_BATCH} requests")
        return McpRequest(tuple(_call(item) for item in doc), batch=True)
    return McpRequest((_call(doc),), batch=False)


def _call(item: object) -> McpCall:
    if not isinstance(item, dict) or item.get("jsonrpc") != "2.0" or not isinstance(item.get("method"), str):
        raise McpBodyError(-32600, "each request must be a JSON-RPC 2.0 object with a method")
    if not _plain_name(item["method"]):
        raise McpBodyError(-32600, "the method name holds a control or unassigned character")
    request_id = item.get("id")
    if isinstance(request_id, bool) or not isinstance(request_id, str | int):
        request_id = None  # answer errors with id null rather than echo something odd
    tool = None
    if item["method"] == "tools/call":
        params = item.get("params")
        name = params.get("name") if isinstance(params, dict) else None
        if not isinstance(name, str) or not name or len(name) > MAX_TOOL_NAME:
            raise McpBodyError(-32602, "tools/call needs params.name (the tool)")
        if not _plain_name(name):
            raise McpBodyError(-32602, "the tool name holds a control or unassigned character")
        tool = name
    return McpCall(id=request_id, method=item["method"], tool=tool)


def _lookup(table: Mapping[str, int], name: str) -> int | None:
    """Exact name, then the longest `prefix*`, then `*`."""
    if name in table:
        return table[name]
    prefixes = [(p[:-1], cost) for p, cost in table.items() if p.endswith("*") and name.startswith(p[:-1])]
    if prefixes:
        return max(prefixes, key=lambda item: len(item[0]))[1]
    return None


@dataclass(frozen=True)
class PricingTable:
    tools: Mapping[str, int] = field(default_factory=dict)
    methods: Mapping[str, int] = field(default_factory=dict)
    default: int = 1

    def cost(self, call: McpCall) -> int:
        table, name = (self.tools, call.tool) if call.tool is not None else (self.methods, call.method)
        price = _lookup(table, name)
        return self.default if price is None else price

    def total(self, request: McpRequest) -> int:
        """A batch costs the sum of its calls, debited in one atomic step."""
        return sum(self.cost(call) for call in request.calls)


JSONRPC_CODES = {401: -32001, 402: -32002, 403: -32003, 503: -32004}


def error_body(request: McpRequest | None, code: int, message: str, data: Mapping[str, Any]) -> Any:
    """JSON-RPC 2.0 error(s) carrying the request id(s): one object, or one per call of a batch."""

    def one(request_id: Any) -> dict[str, Any]:
        return {"jsonrpc": "2.0", "id": request_id, "error": {"code": code, "message": message, "data": dict(data)}}

    if request is None:
        return one(None)
    if request.batch:
        return [one(call.id) for call in request.calls if call.id is not None] or [one(None)]
    return one(request.calls[0].id)
