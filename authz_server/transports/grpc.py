"""The gRPC transport (SPEC: Transports): Envoy's envoy.service.auth.v3.Authorization/Check on grpc.aio, a thin
adapter around the check pipeline — every rule lives in the pipeline, shared by every transport."""

from __future__ import annotations

import time

import grpc
from envoy.service.auth.v3 import external_auth_pb2_grpc
from envoy.service.auth.v3.external_auth_pb2 import CheckRequest, CheckResponse

from authz_server.check import CheckPipeline


class AuthorizationService(external_auth_pb2_grpc.AuthorizationServicer):
    def __init__(self, pipeline: CheckPipeline) -> None:
        self._pipeline = pipeline

    async def Check(self, request: CheckRequest, context: grpc.aio.ServicerContext) -> CheckResponse:
        remaining = context.time_remaining()  # Envoy sends its ext_authz timeout as the gRPC deadline
        return await self._pipeline.check(request, None if remaining is None else time.time() + remaining)
