"""The OpenAPI 3.1 document of the Mint's HTTP API (`/api/openapi.json`), generated from the operation table and
its pydantic models (mint_server/api/operations.py): what the routes accept is what the document says."""

from __future__ import annotations

import functools
from typing import Any

from pydantic.json_schema import models_json_schema

from mint_server.api.operations import OPERATIONS, Operation
from mint_server.api.schemas import Model

_REF = "#/components/schemas/{model}"
_ERRORS = {
    "400": "bad request: the message names the field",
    "401": "no credential, or an invalid, expired or revoked one",
    "403": "the credential lacks the operation's role, or a caveat refuses the call (audited admin_denied)",
    "404": "nothing of that id or name in the caller's tenant",
    "409": "a conflict: a version moved, a name taken, a cut below what is spent",
    "503": "the ledger or the control plane cannot answer; nothing was changed",
}


def _parameters(operation: Operation, schema: dict[str, Any]) -> list[dict[str, Any]]:
    properties, required = schema.get("properties", {}), set(schema.get("required", ()))
    names = list(operation.path_params)
    if operation.method in ("GET", "DELETE"):
        names += [name for name in properties if name not in operation.path_params]
    return [
        {
            "name": name,
            "in": "path" if name in operation.path_params else "query",
            "required": name in operation.path_params or name in required,
            "schema": properties[name],
        }
        for name in names
    ]


def _body(operation: Operation, schema: dict[str, Any]) -> dict[str, Any] | None:
    if operation.method in ("GET", "DELETE"):
        return None
    properties = {k: v for k, v in schema.get("properties", {}).items() if k not in operation.path_params}
    if not properties:
        return None
    required = [name for name in schema.get("required", ()) if name in properties]
    body = {"type": "object", "properties": properties, "additionalProperties": False}
    if required:
        body["required"] = required
    return {"required": bool(required), "content": {"application/json": {"schema": body}}}


@functools.cache
def openapi_document() -> dict[str, Any]:
    models: list[type[Model]] = sorted(
        {m for op in OPERATIONS for m in (op.request, op.response)}, key=lambda m: m.__name__
    )
    refs, definitions = models_json_schema([(m, "validation") for m in models], ref_template=_REF)
    schemas = dict(definitions.get("$defs", {}))
    schemas["Error"] = {
        "type": "object",
        "properties": {"error": {"type": "string"}, "message": {"type": "string"}},
        "required": ["error", "message"],
    }
    paths: dict[str, dict[str, Any]] = {}
    for op in OPERATIONS:
        request_schema = schemas[op.request.__name__]
        entry: dict[str, Any] = {
            "operationId": op.name,
            "summary": op.summary,
            "description": f"Role: `{op.role}` or higher. gRPC: `satgate_api.admin.v1.Admin/{op.name}`.",
            "tags": ["admin"],
            "x-satgate-role": op.role,
            "security": [{"bearer": []}],
            "parameters": _parameters(op, request_schema),
            "responses": {
                "200": {
                    "description": "OK",
                    "content": {"application/json": {"schema": refs[(op.response, "validation")]}},
                },
                **{
                    status: {
                        "description": text,
                        "content": {"application/json": {"schema": {"$ref": _REF.format(model="Error")}}},
                    }
                    for status, text in _ERRORS.items()
                },
            },
        }
        if (body := _body(op, request_schema)) is not None:
            entry["requestBody"] = body
        if op.name == "ExportAudit":
            entry["responses"]["200"]["content"]["text/csv"] = {"schema": {"type": "string"}}
        paths.setdefault(op.path, {})[op.method.lower()] = entry
    paths.update(_public_paths())
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "SatGate Mint",
            "version": "1",
            "description": "Exchange workload identities for macaroons, delegate, and administer the control plane.",
        },
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "description": "a SatGate token"}},
        },
    }


def _public_paths() -> dict[str, Any]:
    def post(operation_id: str, summary: str, secured: bool) -> dict[str, Any]:
        entry: dict[str, Any] = {
            "operationId": operation_id,
            "summary": summary,
            "tags": ["mint"],
            "requestBody": {"required": False, "content": {"application/json": {"schema": {"type": "object"}}}},
            "responses": {
                "200": {"description": "OK", "content": {"application/json": {"schema": {"type": "object"}}}},
                "default": {
                    "description": "a refusal",
                    "content": {"application/json": {"schema": {"$ref": _REF.format(model="Error")}}},
                },
            },
        }
        if secured:
            entry["security"] = [{"bearer": []}]
        return {"post": entry}

    return {
        "/api/mint/exchange": post("Exchange", "A workload identity (JWT, or a signed AWS request) for a token", False),
        "/api/mint/verify": post("Verify", "Is the bearer token genuine, unexpired and unrevoked", True),
        "/api/mint/delegate": post("Delegate", "A narrower child of the bearer token", True),
        "/healthz": {"get": {"operationId": "Healthz", "responses": {"200": {"description": "serving"}}}},
    }
