from __future__ import annotations

import json
import uuid
from collections.abc import Mapping

import pytest
from envoy.service.auth.v3.external_auth_pb2 import CheckRequest, CheckResponse

from authz_server.check import CheckPipeline, CheckSettings
from authz_server.transports.grpc import GrpcChecks
from satgate.routes import RouteRule, RouteTable
from satgate.tokens.verify import TokenVerifier
from tests.ledgers import fresh_ledger


def check_request(
    token: str | None = None,
    *,
    path: str = "/v1/items",
    method: str = "GET",
    host: str = "api.example.com",
    headers: Mapping[str, str] | None = None,
    context: Mapping[str, str] | None = None,
    source: str = "10.0.0.7",
    request_id: str | None = None,
    body: bytes | None = None,
    content_type: str = "application/json",
) -> CheckRequest:
    request = CheckRequest()
    http = request.attributes.request.http
    http.method, http.path, http.host = method, path, host
    http.headers["x-request-id"] = request_id or str(uuid.uuid4())
    if token is not None:
        http.headers["authorization"] = f"Bearer {token}"
    for key, value in (headers or {}).items():
        http.headers[key] = value
    request.attributes.source.address.socket_address.address = source
    request.attributes.context_extensions.update(context or {})
    if body is not None:  # as Envoy sends it with with_request_body.pack_as_bytes
        http.raw_body = body
        http.headers["content-type"] = content_type
    return request


def status_of(response: CheckResponse) -> int:
    return 200 if response.HasField("ok_response") else response.denied_response.status.code


def body_of(response: CheckResponse) -> dict:
    return json.loads(response.denied_response.body)


def headers_of(response: CheckResponse) -> dict[str, str]:
    which = response.ok_response if response.HasField("ok_response") else response.denied_response
    return {h.header.key: h.header.value for h in which.headers}


class GrpcPipeline(GrpcChecks):
    """The pipeline as Envoy's gRPC client sees it: CheckRequest in, CheckResponse out (the servicer's own
    conversions), with the pipeline's parts at hand for tests that look inside."""

    def __getattr__(self, name: str):
        return getattr(self.pipeline, name)

    def __setattr__(self, name: str, value) -> None:
        if name == "pipeline":
            super().__setattr__(name, value)
        else:  # e.g. a test swapping in a slow ledger
            setattr(self.pipeline, name, value)


def grpc_pipeline(**parts) -> GrpcPipeline:
    return GrpcPipeline(CheckPipeline(**parts))


@pytest.fixture
async def make_pipeline(tmp_path, keyring):
    ledgers = []

    def build(
        rules=(), attributes=("department",), metrics=None, refund_keyring=None, clock=None, hook=None, **settings
    ) -> GrpcPipeline:
        ledger = fresh_ledger(f"sqlite:///{tmp_path}/ledger-{len(ledgers)}.db")
        ledgers.append(ledger)
        return grpc_pipeline(
            verifier=TokenVerifier(keyring, attribute_keys=attributes),
            ledger=ledger,
            routes=RouteTable([RouteRule(**rule) for rule in rules]),
            settings=CheckSettings(attribute_headers=tuple(attributes), **settings),
            metrics=metrics,
            keyring=refund_keyring,
            on_budget_exhausted=hook,
            **({} if clock is None else {"clock": clock}),
        )

    yield build
    for ledger in ledgers:
        await ledger.close()


@pytest.fixture
async def pipeline(make_pipeline):
    return make_pipeline()
