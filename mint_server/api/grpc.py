"""gRPC front end of the Mint: the same MintService as HTTP, errors as gRPC status codes."""

from __future__ import annotations

from typing import Any, NoReturn

import grpc

from mint_server.admin import AdminService, Caller, DelegateRequest
from mint_server.providers.aws import IamRequest
from mint_server.service import ExchangeDenied, MintService
from satgate.audit import canonical_json
from satgate.caveats import Denial
from satgate.tokens.bearer import bearer_token
from satgate.tokens.verify import VerifiedToken
from satgate_api.admin.v1 import admin_pb2, admin_pb2_grpc
from satgate_api.mint.v1 import mint_pb2, mint_pb2_grpc

_STATUS = {
    400: grpc.StatusCode.INVALID_ARGUMENT,
    401: grpc.StatusCode.UNAUTHENTICATED,
    403: grpc.StatusCode.PERMISSION_DENIED,
    404: grpc.StatusCode.NOT_FOUND,
    429: grpc.StatusCode.RESOURCE_EXHAUSTED,
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
        try:
            if which == "credentials":
                result = await self._service.exchange_jwt(request.credentials, source=_caller(context, "").source_ip)
            elif which == "aws":
                iam = request.aws
                result = await self._service.exchange_aws(
                    IamRequest(iam.method.upper(), iam.url, iam.body, {k.lower(): v for k, v in iam.headers.items()}),
                    source=_caller(context, "").source_ip,
                )
            else:
                await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "bad_request: give credentials or aws")
        except ExchangeDenied as denied:
            await _abort(context, denied)
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
            )
            assert isinstance(credential, str)
            child = await self._admin.delegate(parent, credential, spec)
        except ExchangeDenied as denied:
            await _abort(context, denied)
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
    def __init__(self, admin: AdminService) -> None:
        self._admin = admin

    async def _authenticate(self, context: grpc.aio.ServicerContext, method: str) -> VerifiedToken:
        try:
            return await self._admin.authenticate(
                _credential(context), _caller(context, f"/satgate_api.admin.v1.Admin/{method}"), operation=method
            )
        except ExchangeDenied as denied:
            await _abort(context, denied)

    async def Revoke(self, request: admin_pb2.RevokeRequest, context: grpc.aio.ServicerContext) -> Any:
        caller = await self._authenticate(context, "Revoke")
        try:
            result = await self._admin.revoke(caller, request.id, request.reason, pre_revoke=request.pre_revoke)
        except ExchangeDenied as denied:
            await _abort(context, denied)
        return admin_pb2.RevokeResponse(
            revoked=result["revoked"],
            tenant=result["tenant"],
            already_revoked=result["already_revoked"],
            known_delegations=result["known_delegations"],
            recorded_as=result["recorded_as"] or "",
        )

    async def ListDelegations(
        self, request: admin_pb2.ListDelegationsRequest, context: grpc.aio.ServicerContext
    ) -> Any:
        caller = await self._authenticate(context, "ListDelegations")
        which = request.WhichOneof("of")
        try:
            records = await self._admin.delegations(
                caller,
                token_id=request.token_id if which == "token_id" else None,
                delegation_id=request.delegation_id if which == "delegation_id" else None,
            )
        except ExchangeDenied as denied:
            await _abort(context, denied)
        response = admin_pb2.ListDelegationsResponse()
        for record in records:
            item = response.delegations.add(
                delegation_id=record["delegation_id"],
                token_id=record["token_id"],
                parent_delegation_id=record["parent_delegation_id"] or "",
                created_at=record["created_at"],
                actor=record["actor"],
                label=record["label"] or "",
                scopes=record["scopes"] or "",
                expires_at=record["expires_at"],
            )
            if record["budget_credits"] is not None:
                item.budget_credits = record["budget_credits"]
        return response

    async def RevokePolicy(self, request: admin_pb2.RevokePolicyRequest, context: grpc.aio.ServicerContext) -> Any:
        caller = await self._authenticate(context, "RevokePolicy")
        try:
            result = await self._admin.revoke_policy(caller, request.name, request.reason)
        except ExchangeDenied as denied:
            await _abort(context, denied)
        return admin_pb2.RevokePolicyResponse(policy=result["policy"], already_revoked=result["already_revoked"])

    async def ExportAudit(self, request: admin_pb2.ExportAuditRequest, context: grpc.aio.ServicerContext) -> Any:
        caller = await self._authenticate(context, "ExportAudit")
        records = await self._admin.audit_records(caller)
        return admin_pb2.ExportAuditResponse(records=[canonical_json(r) for r in records])
