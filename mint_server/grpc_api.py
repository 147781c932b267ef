"""gRPC front end of the Mint: the same MintService as HTTP, errors as gRPC status codes."""

from __future__ import annotations

import grpc

from mint_server.aws import IamRequest
from mint_server.service import ExchangeDenied, MintService
from satgate_api.mint.v1 import mint_pb2, mint_pb2_grpc

_STATUS = {
    400: grpc.StatusCode.INVALID_ARGUMENT,
    401: grpc.StatusCode.UNAUTHENTICATED,
    403: grpc.StatusCode.PERMISSION_DENIED,
    429: grpc.StatusCode.RESOURCE_EXHAUSTED,
    503: grpc.StatusCode.UNAVAILABLE,
}


class MintGrpc(mint_pb2_grpc.MintServicer):
    def __init__(self, service: MintService) -> None:
        self._service = service

    async def Exchange(
        self, request: mint_pb2.ExchangeRequest, context: grpc.aio.ServicerContext
    ) -> mint_pb2.ExchangeResponse:
        which = request.WhichOneof("identity")
        try:
            if which == "credentials":
                result = await self._service.exchange_jwt(request.credentials)
            elif which == "aws":
                iam = request.aws
                result = await self._service.exchange_aws(
                    IamRequest(iam.method.upper(), iam.url, iam.body, {k.lower(): v for k, v in iam.headers.items()})
                )
            else:
                await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "bad_request: give credentials or aws")
        except ExchangeDenied as denied:
            await context.abort(
                _STATUS.get(denied.status, grpc.StatusCode.INTERNAL), f"{denied.error}: {denied.message}"
            )
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
            await context.abort(
                _STATUS.get(denied.status, grpc.StatusCode.INTERNAL), f"{denied.error}: {denied.message}"
            )
        response = mint_pb2.VerifyResponse(valid=result.valid, error=result.error or "")
        if result.valid:
            response.token_id, response.tenant = result.token_id or "", result.tenant or ""
            response.caveats.extend(result.caveats)
            if result.remaining is not None:
                response.remaining = result.remaining
        return response
