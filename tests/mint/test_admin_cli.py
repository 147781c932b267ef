"""`satgate admin …` against a running Mint: the CLI is the API's own operations, with its refusals in one line."""

import asyncio
import json
import os
import sys

import pytest
import yaml

from .conftest import oidc_policy, policies
from .test_admin import admin_token
from .test_admin_api import managed_policy


@pytest.fixture
async def mint_server(idp, start_mint):
    return await start_mint(policies(oidc_policy(idp.issuer, issue="budget_credits: 5, scopes: [api:read]")))


async def satgate_admin(m, token: str | None, *args: str) -> tuple[int, str, str]:
    url = str(m.client.make_url("/"))
    env = {**os.environ, "SATGATE_MINT_URL": url}
    if token is not None:
        env["SATGATE_ADMIN_TOKEN"] = token
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "satgate_cli",
        "admin",
        *args,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 60)
    return process.returncode, out.decode(), err.decode()


async def test_admin_cli_manages_policies_tokens_and_budgets(idp, mint_server, keyring, tmp_path):
    token = admin_token(keyring)
    policy_file = tmp_path / "bots.yaml"
    policy_file.write_text(yaml.safe_dump(managed_policy(idp.issuer)))
    code, out, err = await satgate_admin(mint_server, token, "create-policy", "--file", str(policy_file))
    assert code == 0, err
    assert json.loads(out)["version"] == 1
    _, issued = await mint_server.exchange(idp.token("bot-1", "satgate"))

    code, out, _ = await satgate_admin(mint_server, token, "list-tokens", "--policy", "managed")
    assert [t["token_id"] for t in json.loads(out)["tokens"]] == [issued["token_id"]]
    code, out, err = await satgate_admin(
        mint_server, token, "change-budget", "--id", issued["token_id"], "--delta", "-3"
    )
    assert code == 0, err
    assert json.loads(out)["remaining"] == 4
    code, _, err = await satgate_admin(mint_server, token, "change-budget", "--id", issued["token_id"], "--delta", "-5")
    assert code == 1 and err.strip().splitlines()[-1].startswith("Error: 409 below_spent: a cut of 5")
    code, out, _ = await satgate_admin(mint_server, token, "export-audit", "--type", "budget_change", "--format", "csv")
    assert code == 0 and out.splitlines()[0].startswith("seq,") and len(out.splitlines()) == 2


async def test_admin_cli_refusals_are_one_line(mint_server, keyring):
    code, _, err = await satgate_admin(mint_server, None, "list-tokens")
    assert code == 1 and "SATGATE_ADMIN_TOKEN" in err
    viewer = admin_token(keyring, "acme", "satgate:viewer")
    code, _, err = await satgate_admin(mint_server, viewer, "revoke", "--id", "a" * 32)
    assert code == 1
    assert err.strip() == (
        "Error: 403 insufficient_scope: Revoke needs role 'satgate:member' or higher; "
        "this credential holds 'satgate:viewer'"
    )
    code, _, err = await satgate_admin(mint_server, viewer, "get-token", "--token-id", "nope")
    assert code == 1 and err.strip().startswith("Error: 400 bad_request: token_id:")
