"""The baseline: an ext_authz server on the same runtime (grpc.aio) that allows everything at once."""

from __future__ import annotations

import asyncio
import sys

import grpc
from envoy.service.auth.v3 import external_auth_pb2_grpc
from envoy.service.auth.v3.external_auth_pb2 import CheckResponse, OkHttpResponse
from google.rpc.status_pb2 import Status

_ALLOW = CheckResponse(status=Status(code=0), ok_response=OkHttpResponse())


class NoopAuthorization(external_auth_pb2_grpc.AuthorizationServicer):
    async def Check(self, request, context):
        return _ALLOW


async def main(listen: str) -> None:
    server = grpc.aio.server()
    external_auth_pb2_grpc.add_AuthorizationServicer_to_server(NoopAuthorization(), server)
    server.add_insecure_port(listen)
    await server.start()
    print("ready", flush=True)
    await server.wait_for_termination()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
