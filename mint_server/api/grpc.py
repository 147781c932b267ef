"""gRPC front end of the Mint: the same MintService as HTTP, errors as gRPC status codes."""

from __future__ import annotations

from typing import Any, NoReturn

import grpc
from google.protobuf.json_format import MessageToDict, ParseDict
from google.protobuf.message import Message
from pydantic import ValidationError

from mint_server.admin.service import AdminService, Caller, DelegateRequest
from mint_server.api.http import refusal_of
from mint_server.api.operations import OPERATIONS, Operation
from mint_server.exchange.service import ExchangeDenied, MintService
from mint_server.identity.aws import IamRequest
from satgate.audit import canonical_json
from satgate.caveats import Denial
from satgate.control_plane.store import STORE_ERRORS
from satgate.tokens.bearer import bearer_token
from satgate_api.admin.v1 import admin_pb2, admin_pb2_grpc
from satgate_api.mint.v1 import mint_pb2, mint_pb2_grpc

_STATUS = {
    400: grpc.StatusCode.INVALID_ARGUMENT,
    401: grpc.StatusCode.UNAUTHENTICATED,
    403: grpc.StatusCode.PERMISSION_DENIED,
    404: grpc.StatusCode.NOT_FOUND,
    429: grpc.StatusCode.RESOURCE_EXHAUSTED,
    409: grpc.StatusCode.ABORTED,
    503: grpc.StatusCode.UNAVAILABLE,
}


class MintGrpc(mint_pb2_grpc.MintServicer):
    def __init__(self, service: MintService, admin: AdminService) -> None:
        self._service = service
        self._delegate = DelegateGrpc(admin)

    async def Delegate(self, request: mint_pb2.DelegateRequest, context: grpc.aio.ServicerContext) -> Any:
        return await self._delegate(request, context)

    async def Exchange(
        self, request: mint_pb2.ExchangeRequest, context: grpc.aio.ServicerContext
    ) -> mint_pb2.ExchangeResponse:
        which = request.WhichOneof("identity")
        trace = {key: value for key, value in context.invocation_metadata() or () if isinstance(value, str)}
        try:
            if which == "credentials":
                result = await self._service.exchange_jwt(
                    request.credentials, source=_caller(context, "").source_ip, trace_headers=trace
                )
            elif which == "aws":
                iam = request.aws
                result = await self._service.exchange_aws(
                    IamRequest(iam.method.upper(), iam.url, iam.body, {k.lower(): v for k, v in iam.headers.items()}),
                    source=_caller(context, "").source_ip,
                    trace_headers=trace,
                )
            else:
                await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "bad_request: give credentials or aws")
        except ExchangeDenied as denied:
            await _abort(context, denied)
        except STORE_ERRORS:
            await context.abort(grpc.StatusCode.UNAVAILABLE, "unavailable: control plane unavailable")
        response = mint_pb2.ExchangeResponse(
            token=result.token,
            token_id=result.token_id,
            tenant=result.tenant,
            expires_at=result.expires_at,
            caveats=list(result.caveats),
            policy=result.policy,
        )
        if result.budget_credits is not None:
            response.budget_credits = result.budget_credits
        if result.budget_window is not None:
            response.budget_window = result.budget_window
        if result.identity_budget is not None:
            response.identity_budget.CopyFrom(mint_pb2.IdentityBudget(**result.identity_budget))
        return response

    async def Verify(
        self, request: mint_pb2.VerifyRequest, context: grpc.aio.ServicerContext
    ) -> mint_pb2.VerifyResponse:
        try:
            result = await self._service.verify(request.token)
        except ExchangeDenied as denied:
            await _abort(context, denied)
        response = mint_pb2.VerifyResponse(valid=result.valid, error=result.error or "")
        if result.valid:
            response.token_id, response.tenant = result.token_id or "", result.tenant or ""
            response.caveats.extend(result.caveats)
            if result.remaining is not None:
                response.remaining = result.remaining
            if result.resets_at is not None:
                response.resets_at = result.resets_at
        return response


def _caller(context: grpc.aio.ServicerContext, method: str) -> Caller:
    """A gRPC call as a request, for the token's caveats: POST to the method path, from the peer address."""
    peer = context.peer() or ""  # ipv4:127.0.0.1:5555 | ipv6:[::1]:5555
    address = peer.split(":", 1)[1].rsplit(":", 1)[0].strip("[]") if ":" in peer else ""
    return Caller(method="POST", path=method, host="", source_ip=address)


def _credential(context: grpc.aio.ServicerContext) -> str | Denial:
    metadata = dict(context.invocation_metadata() or ())
    value = metadata.get("authorization", "")
    return bearer_token(value if isinstance(value, str) else "")


async def _abort(context: grpc.aio.ServicerContext, denied: ExchangeDenied) -> NoReturn:
    await context.abort(_STATUS.get(denied.status, grpc.StatusCode.INTERNAL), f"{denied.error}: {denied.message}")
    raise AssertionError("abort raises")


class DelegateGrpc:
    """Mint.Delegate, bound onto MintGrpc: authenticated by the parent token itself."""

    def __init__(self, admin: AdminService) -> None:
        self._admin = admin

    async def __call__(self, request: mint_pb2.DelegateRequest, context: grpc.aio.ServicerContext) -> Any:
        credential = _credential(context)
        try:
            parent = await self._admin.authenticate(
                credential, _caller(context, "/satgate_api.mint.v1.Mint/Delegate"), operation=None
            )
            spec = DelegateRequest(
                budget_credits=request.budget_credits if request.HasField("budget_credits") else None,
                scopes=tuple(request.scopes),
                ttl=request.ttl or None,
                label=request.label or None,
                caveats=dict(request.caveats),
                budget_window=request.budget_window if request.HasField("budget_window") else None,
            )
            assert isinstance(credential, str)
            child = await self._admin.delegate(parent, credential, spec)
        except ExchangeDenied as denied:
            await _abort(context, denied)
        except STORE_ERRORS:
            await context.abort(grpc.StatusCode.UNAVAILABLE, "unavailable: control plane unavailable")
        return mint_pb2.DelegateResponse(
            token=child["token"],
            token_id=child["token_id"],
            delegation_id=child["delegation_id"],
            parent_delegation_id=child["parent_delegation_id"] or "",
            tenant=child["tenant"],
            expires_at=child["expires_at"],
            caveats=child["caveats"],
        )


class AdminGrpc(admin_pb2_grpc.AdminServicer):
    """Every operation of mint_server/api/operations.py as a method: the request message read as the JSON body
    would be (same field names), the result written into the method's response message."""

    def __init__(self, admin: AdminService) -> None:
        self._admin = admin
        methods = admin_pb2.DESCRIPTOR.services_by_name["Admin"].methods_by_name
        for operation in OPERATIONS:
            response_type = getattr(admin_pb2, methods[operation.name].output_type.name)
            setattr(self, operation.name, self._method(operation, response_type))

    def _method(self, operation: Operation, response_type: type[Message]) -> Any:
        async def call(request: Message, context: grpc.aio.ServicerContext) -> Message:
            caller = _caller(context, f"/satgate_api.admin.v1.Admin/{operation.name}")
            try:
                token = await self._admin.authenticate(_credential(context), caller, operation=operation.name)
                try:
                    arguments = operation.request.model_validate(
                        MessageToDict(request, preserving_proto_field_name=True)
                    )
                except ValidationError as exc:
                    raise refusal_of(exc) from None
                result = operation.response.model_validate(await operation.perform(self._admin, token, arguments))
            except ExchangeDenied as denied:
                await _abort(context, denied)
            except STORE_ERRORS:
                await context.abort(grpc.StatusCode.UNAVAILABLE, "unavailable: control plane unavailable")
            shaped = result.model_dump(mode="json")
            if operation.name == "ExportAudit":  # the exact bytes each hash covers, not a re-encoding of them
                shaped = {"records": [canonical_json(r) for r in shaped["records"]]}
            return ParseDict(shaped, response_type())

        return call
