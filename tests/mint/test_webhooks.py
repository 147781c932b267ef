"""Audit events delivered to a real local HTTP receiver: signed, retried, shaped, and never in the way."""

import asyncio
import json
import time
from dataclasses import dataclass, field

import pytest
from aiohttp import web

from mint_server.api.http import WEBHOOKS
from mint_server.audit.webhooks import ATTEMPT_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER, verify_signature
from satgate_dev.devstack import free_port

from .conftest import oidc_policy, policies

SECRET = "whsec-test-1"


@dataclass
class Receiver:
    url: str
    fail_first: int = 0
    hang: bool = False
    received: list[dict] = field(default_factory=list)
    attempts: int = 0
    release: asyncio.Event = field(default_factory=asyncio.Event)


@pytest.fixture
async def receiver():
    port = free_port()
    state = Receiver(url=f"http://127.0.0.1:{port}/hook")

    async def hook(request: web.Request) -> web.Response:
        state.attempts += 1
        if state.hang:
            await asyncio.wait_for(state.release.wait(), 30)
            return web.Response(status=503)
        if state.attempts <= state.fail_first:
            return web.Response(status=500)
        body = await request.read()
        state.received.append({"headers": dict(request.headers), "body": body, "json": json.loads(body)})
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/hook", hook)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    yield state
    state.release.set()
    await runner.cleanup()


def hooks(receiver, **extra):
    return {"webhooks": [{"url": receiver.url, "secret": SECRET, **extra}]}


async def test_events_arrive_signed_as_json(idp, start_mint, receiver):
    mint = await start_mint(policies(oidc_policy(idp.issuer)), **hooks(receiver))
    _, issued = await mint.exchange(idp.token("agent-1", "satgate"))
    await mint.exchange(idp.token("intruder", "satgate"))
    await mint.client.app[WEBHOOKS].settle()
    events = [r["json"]["event"] for r in receiver.received]
    # seq 1 is the Mint's own config_loaded, written before its webhooks start following the chain
    assert [(e["type"], e["seq"]) for e in events] == [("exchange", 2), ("exchange_denied", 3)]
    assert events[0]["token_id"] == issued["token_id"] and len(events[0]["hash"]) == 64
    first = receiver.received[0]
    assert verify_signature(
        SECRET, first["headers"][TIMESTAMP_HEADER], first["body"], first["headers"][SIGNATURE_HEADER]
    )
    assert not verify_signature(
        "wrong", first["headers"][TIMESTAMP_HEADER], first["body"], first["headers"][SIGNATURE_HEADER]
    )
    assert abs(int(first["headers"][TIMESTAMP_HEADER]) - time.time()) < 60
    assert issued["token"] not in str(receiver.received)


async def test_failed_deliveries_are_retried_with_backoff(idp, start_mint, receiver):
    receiver.fail_first = 2
    mint = await start_mint(policies(oidc_policy(idp.issuer)), **hooks(receiver))
    await mint.exchange(idp.token("agent-1", "satgate"))
    await mint.client.app[WEBHOOKS].settle()
    assert receiver.attempts == 3
    assert [r["headers"][ATTEMPT_HEADER] for r in receiver.received] == ["3"]


@pytest.mark.parametrize(("fmt", "key"), [("slack", "text"), ("discord", "content")])
async def test_slack_and_discord_shapes(idp, start_mint, receiver, fmt, key):
    mint = await start_mint(
        policies(oidc_policy(idp.issuer)), **hooks(receiver, format=fmt, events=["exchange_denied"])
    )
    await mint.exchange(idp.token("agent-1", "satgate"))  # filtered out
    await mint.exchange(idp.token("intruder", "satgate"))
    await mint.client.app[WEBHOOKS].settle()
    assert len(receiver.received) == 1
    message = receiver.received[0]["json"]
    assert key in message
    assert message[key].startswith("SatGate *exchange_denied*") and "reason=no_matching_rule" in message[key]


async def test_a_hanging_receiver_never_slows_the_mint(idp, start_mint, receiver):
    receiver.hang = True
    mint = await start_mint(policies(oidc_policy(idp.issuer)), **hooks(receiver))
    started = time.monotonic()
    for i in range(5):
        assert (await mint.exchange(idp.token(f"agent-{i}", "satgate")))[0] == 200
    assert time.monotonic() - started < 3


def test_webhook_config_is_validated(tmp_path):
    from satgate.config import ConfigError, load_config

    path = tmp_path / "satgate.yaml"
    for mint, fragment in [
        ({"webhooks": [{"url": "http://hooks.example.com/x", "secret": "s"}]}, "https://"),
        ({"webhooks": [{"url": "https://hooks.example.com/x"}]}, "exactly one of secret"),
        ({"webhooks": [{"url": "https://h.example/x", "secret": "s", "events": ["coffee"]}]}, "unknown event"),
    ]:
        path.write_text(json.dumps({"mint": mint}))
        with pytest.raises(ConfigError, match=fragment):
            load_config(path)


def test_an_unset_webhook_secret_stops_only_the_mint(tmp_path, keyring_file):
    """A command that sends no webhooks does not need the Mint's environment; the Mint refuses to start."""
    import subprocess
    import sys

    config = tmp_path / "satgate.yaml"
    webhooks = [{"url": "https://h.example/x", "secret_env": "SATGATE_NOT_SET_ANYWHERE"}]
    config.write_text(json.dumps({"keyring": str(keyring_file), "mint": {"webhooks": webhooks}}))

    def satgate(*args: str) -> subprocess.CompletedProcess:
        argv = [sys.executable, "-m", "satgate_cli", *args, "--config", str(config)]
        return subprocess.run(argv, capture_output=True, text=True, timeout=60)

    assert satgate("ledger", "init").returncode == 0
    assert satgate("token", "mint", "--tenant", "acme", "--scope", "a:b", "--budget", "1").returncode == 0
    refused = satgate("mint")
    assert refused.returncode != 0 and "Traceback" not in refused.stderr
    assert refused.stderr.strip() == (
        "Error: mint.webhooks.0.secret_env: environment variable SATGATE_NOT_SET_ANYWHERE is not set; set it to the "
        "webhook's signing secret"
    )


async def test_events_appended_by_other_processes_are_delivered(idp, start_mint, receiver, tmp_path):
    """authz servers append budget_exhausted to the same chain; the Mint's tail delivers it."""
    from satgate.audit import AuditEvent, SqliteAuditLog

    mint = await start_mint(policies(oidc_policy(idp.issuer)), **hooks(receiver, events=["budget_exhausted"]))
    other = SqliteAuditLog(tmp_path / "audit.db")  # a separate handle, as another process would have
    await other.append(AuditEvent(type="budget_exhausted", tenant="acme", actor="authz", token_id="f" * 32))
    await mint.client.app[WEBHOOKS].settle()
    assert [r["json"]["event"]["type"] for r in receiver.received] == ["budget_exhausted"]
    await other.close()
