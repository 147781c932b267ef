"""The HTTP transport's adapter (authz_server/transports/http.py) driven as uvicorn drives it — ASGI messages —
around a real pipeline and SQLite ledger. Through real Envoy on both transports: tests/e2e (parametrised)."""

import asyncio
import json
import time

import pytest

from authz_server.transports.http import CHECK_PREFIX, MAX_BODY_BYTES, HttpAuthorization, _check_input
from satgate.tokens.mint import mint
from satgate.tokens.verify import TokenVerifier


def scope(path: str, headers: dict[str, str] | list[tuple[str, str]] | None = None, method: str = "GET") -> dict:
    pairs = headers.items() if isinstance(headers, dict) else (headers or [])
    return {
        "type": "http",
        "method": method,
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "http_version": "1.1",
        "headers": [(k.lower().encode(), v.encode()) for k, v in pairs],
    }


async def call(app, request: dict, body: bytes = b"", *, disconnect_after: float | None = None) -> dict:
    """One request through the ASGI app: its status, headers and body as sent."""
    sent: list[dict] = []
    messages = [{"type": "http.request", "body": body, "more_body": False}]

    async def receive() -> dict:
        if messages:
            return messages.pop(0)
        if disconnect_after is None:
            await asyncio.Event().wait()  # the connection stays open
        await asyncio.sleep(disconnect_after)
        return {"type": "http.disconnect"}

    async def send(message: dict) -> None:
        sent.append(message)

    await app(request, receive, send)
    if not sent:
        return {}
    start, end = sent[0], sent[-1]
    return {
        "status": start["status"],
        "headers": {k.decode(): v.decode() for k, v in start["headers"]},
        "body": end["body"],
    }


@pytest.fixture
def app(pipeline):
    return HttpAuthorization(pipeline.pipeline, ready=lambda: True)


async def test_readiness_is_204_or_503_never_an_allow(pipeline):
    ready = {"now": True}
    app = HttpAuthorization(pipeline.pipeline, ready=lambda: ready["now"])
    assert (await call(app, scope("/readyz")))["status"] == 204
    ready["now"] = False
    assert (await call(app, scope("/readyz")))["status"] == 503
    assert (await call(app, scope("/healthz")))["status"] == 204  # the process is alive
    outside = await call(app, scope("/v1/items", {"authorization": "Bearer x"}))
    assert outside["status"] == 404 and json.loads(outside["body"])["error"] == "not_a_check"


async def test_an_allow_carries_upstream_headers_removals_and_log_fields(app, keyring):
    token = mint(keyring, "acme", [("scope", "api:*"), ("budget", "3")]).token
    headers = {"authorization": f"Bearer {token}", "x-satgate-tenant": "spoof", "x-request-id": "r1", "host": "api"}
    answer = await call(app, scope(f"{CHECK_PREFIX}/v1/items", headers))
    assert answer["status"] == 200 and answer["body"] == b""
    got = answer["headers"]
    assert got["x-satgate-tenant"] == "acme" and got["x-satgate-credits-remaining"] == "2"
    assert set(got["x-envoy-auth-headers-to-remove"].split(",")) == {"authorization"}  # the spoof is overwritten
    token_id = TokenVerifier(keyring).verify(token).token_id
    assert (got["x-satgate-log-token_id"], got["x-satgate-log-charged"]) == (token_id, "1")
    assert list(got).count("x-satgate-credits-remaining") == 1


async def test_a_refusal_is_its_status_and_json_body(app):
    answer = await call(app, scope(f"{CHECK_PREFIX}/v1/items", {"authorization": "Bearer junk", "x-request-id": "r2"}))
    assert answer["status"] == 401 and answer["headers"]["www-authenticate"].startswith("Bearer")
    assert json.loads(answer["body"])["error"] == "malformed_token"
    assert answer["headers"]["x-satgate-log-error"] == "malformed_token"


async def test_an_oversized_body_is_413_before_any_check(app):
    big = scope(f"{CHECK_PREFIX}/mcp", {"content-length": str(MAX_BODY_BYTES + 1)}, method="POST")
    assert (await call(app, big))["status"] == 413


async def test_a_caller_that_goes_away_is_not_charged(make_pipeline, keyring):
    pipeline = make_pipeline()
    slow_debit = pipeline._ledger.debit

    async def debit(request):  # the store answers after Envoy has given up
        await asyncio.sleep(0.3)
        return await slow_debit(request)

    pipeline._ledger.debit = debit
    app = HttpAuthorization(pipeline.pipeline, ready=lambda: True)
    token = mint(keyring, "acme", [("scope", "api:*"), ("budget", "3")]).token
    answer = await call(
        app, scope(f"{CHECK_PREFIX}/v1/items", {"authorization": f"Bearer {token}"}), disconnect_after=0.05
    )
    assert answer == {}  # nothing was sent on the dead connection
    await asyncio.sleep(0.5)  # the cancelled debit's refund lands
    bucket = TokenVerifier(keyring).verify(token).buckets[0]
    assert await pipeline._ledger.remaining("acme", (bucket,)) == 3


def test_the_check_input_is_what_envoys_grpc_client_would_send():
    arrived = time.time()
    request, deadline = _check_input(
        scope(
            f"{CHECK_PREFIX}/v1/a%2Fb",
            [
                ("host", "api.example"),
                ("x-forwarded-for", "1.1.1.1"),
                ("x-forwarded-for", "2.2.2.2"),
                ("x-satgate-source-ip", "10.1.2.3"),
                ("x-satgate-request-start", f"{arrived - 0.2:.3f}"),
                ("x-satgate-timeout-ms", "500"),
            ],
        ),
        b"",
        arrived,
    )
    assert (request.path, request.host, request.method) == ("/v1/a%2Fb", "api.example", "GET")
    assert request.headers["x-forwarded-for"] == "1.1.1.1,2.2.2.2"
    assert request.source_ip == "10.1.2.3"
    assert deadline == pytest.approx(arrived - 0.2 + 0.5, abs=0.002)  # from Envoy's start, not our arrival
    _, without_start = _check_input(scope(f"{CHECK_PREFIX}/", [("x-satgate-timeout-ms", "500")]), b"", arrived)
    assert without_start == pytest.approx(arrived + 0.5)
    _, future_start = _check_input(
        scope(CHECK_PREFIX, [("x-satgate-request-start", f"{arrived + 9}"), ("x-satgate-timeout-ms", "1")]),
        b"",
        arrived,
    )
    assert future_start == pytest.approx(arrived + 0.001)  # a start ahead of our clock never lengthens the deadline
