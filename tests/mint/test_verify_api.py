"""The Mint's HTTP API over a real socket (aiohttp test server)."""

import pytest
import yaml
from aiohttp.test_utils import TestClient, TestServer

from mint_server.app import LEDGER, create_app
from satgate.config import load_config
from satgate.tokens.mint import attenuate, mint


@pytest.fixture
async def client(tmp_path, keyring_file):
    path = tmp_path / "satgate.yaml"
    path.write_text(yaml.safe_dump({"keyring": str(keyring_file), "ledger": f"sqlite:///{tmp_path}/ledger.db"}))
    app = create_app(load_config(path))
    async with TestClient(TestServer(app)) as http:
        yield http


async def test_health(client):
    response = await client.get("/healthz")
    assert (response.status, await response.json()) == (200, {"status": "ok"})


async def test_verify_reports_caveats_and_remaining(client, keyring):
    minted = mint(keyring, "acme", [("scope", "api:*"), ("budget", "9")])
    child = attenuate(minted.token, [("budget", "4")])
    response = await client.post("/api/mint/verify", headers={"Authorization": f"Bearer {child}"})
    assert response.status == 200
    assert await response.json() == {
        "valid": True,
        "token_id": minted.identifier.token_id,
        "tenant": "acme",
        "caveats": ["scope = api:*", "budget = 9", "budget = 4"],
        "remaining": 4,
    }


async def test_verify_rejects_forgeries_and_junk(client, keyring):
    token = mint(keyring, "acme", [("budget", "9")]).token
    forged = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
    body = await (await client.post("/api/mint/verify", headers={"Authorization": f"Bearer {forged}"})).json()
    assert body["valid"] is False
    assert body["error"] in {"invalid_signature", "malformed_token"}
    missing = await client.post("/api/mint/verify")
    assert missing.status == 400


async def test_verify_reports_revocation(client, keyring):
    minted = mint(keyring, "acme")

    await client.app[LEDGER].revoke("acme", minted.identifier.token_id)
    body = await (await client.post("/api/mint/verify", headers={"Authorization": f"Bearer {minted.token}"})).json()
    assert (body["valid"], body["error"]) == (False, "revoked")
