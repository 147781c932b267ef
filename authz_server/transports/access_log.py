"""Envoy's gRPC access-log service (envoy.service.accesslog.v3) on the authz server's gRPC listener: every
entry of the stream goes to DeliveryRefunds, in order; the stream answers nothing until Envoy closes it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc
import structlog
from envoy.service.accesslog.v3 import als_pb2, als_pb2_grpc

from authz_server.delivery import DeliveryRefunds


class AccessLogService(als_pb2_grpc.AccessLogServiceServicer):
    def __init__(self, refunds: DeliveryRefunds) -> None:
        self._refunds = refunds
        self._logger = structlog.get_logger("satgate.authz")

    async def StreamAccessLogs(
        self, request_iterator: AsyncIterator[als_pb2.StreamAccessLogsMessage], context: grpc.aio.ServicerContext
    ) -> als_pb2.StreamAccessLogsResponse:
        async for message in request_iterator:
            for entry in message.http_logs.log_entry:
                try:
                    await self._refunds.settle(entry)
                except Exception:  # one entry we cannot handle must not end the stream: the rest would be lost
                    self._logger.exception("access_log_entry_failed", request_id=entry.request.request_id)
        return als_pb2.StreamAccessLogsResponse()
