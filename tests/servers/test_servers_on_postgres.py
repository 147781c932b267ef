"""Servers on a PostgreSQL control plane: two Mint processes on one database share it (a delegation recorded by
one is listed by the other, a trust policy revoked through one stops issuance on the other at once), and Mint and
authz servers refuse a database that `satgate db upgrade` has not brought to their schema."""

import sys
import time

import aiohttp
import pytest
import yaml

from satgate.keyring import load_keyring
from tests.mint.conftest import oidc_policy, policies, serve_idp
from tests.mint.test_admin import admin_token, bearer
from tests.servers.conftest import free_address, mint_config, refused_line, satgate_ok, start_mint, wait_for_event


def with_control_plane(config, url: str):
    doc = yaml.safe_load(config.read_text())
    config.write_text(yaml.safe_dump({**doc, "control_plane": url}))
    return config


def test_a_mint_refuses_a_database_behind_its_schema_in_one_line(tmp_path, keyring_file, postgres_url):
    config = with_control_plane(mint_config(tmp_path, keyring_file, listen=free_address()), postgres_url)
    line = refused_line([sys.executable, "-m", "satgate_cli", "mint", "--config", str(config)])
    assert "control_plane" in line and "satgate db upgrade" in line, line
    assert "upgraded the control plane" in satgate_ok("db", "upgrade", "--config", str(config))
    assert "nothing to do" in satgate_ok("db", "upgrade", "--config", str(config))
    assert "this SatGate's" in satgate_ok("db", "status", "--config", str(config))


async def test_two_mint_processes_share_delegations_and_policy_revocations(tmp_path, keyring_file, postgres_url):
    idp, idp_runner = await serve_idp()
    policy_file = tmp_path / "policies.yaml"
    policy_file.write_text(policies(oidc_policy(idp.issuer)))
    configs, procs, urls = [], [], []
    for name in ("a", "b"):
        listen = free_address()
        config = mint_config(
            tmp_path / name, keyring_file, listen=listen, grpc_listen=free_address(), policies=str(policy_file)
        )
        configs.append(with_control_plane(config, postgres_url))
        urls.append(f"http://{listen}")
    satgate_ok("db", "upgrade", "--config", str(configs[0]))
    admin = bearer(admin_token(load_keyring(keyring_file)))
    try:
        for config in configs:
            procs.append(start_mint(config))
            wait_for_event(procs[-1], "mint_listening")
        async with aiohttp.ClientSession() as http:
            one, two = urls

            async def exchange(base: str):
                body = {"credentials": idp.token("agent-1", "satgate")}
                async with http.post(f"{base}/api/mint/exchange", json=body) as response:
                    return response.status, await response.json()

            status, issued = await exchange(one)
            assert status == 200, issued
            async with http.post(
                f"{one}/api/mint/delegate", headers=bearer(issued["token"]), json={"budget_credits": 2}
            ) as response:
                assert response.status == 200
                child = await response.json()
            async with http.get(
                f"{two}/api/admin/delegations", headers=admin, params={"token_id": issued["token_id"]}
            ) as response:
                listed = (await response.json())["delegations"]
            assert [d["delegation_id"] for d in listed] == [child["delegation_id"]]

            async with http.post(
                f"{two}/api/admin/policies/agents/revoke", headers=admin, json={"reason": "incident"}
            ) as response:
                assert (await response.json())["revoked"] is True
            revoked_at = time.monotonic()
            status, refused = await exchange(one)  # the other replica, the very next exchange
            assert (status, refused["error"]) == (403, "policy_disabled")
            assert time.monotonic() - revoked_at < 1.0
    finally:
        for proc in procs:
            proc.terminate()
            proc.communicate(timeout=20)
        await idp_runner.cleanup()


pytestmark = pytest.mark.e2e


def test_an_authz_server_refuses_a_database_behind_its_schema_in_one_line(tmp_path, keyring_file, postgres_url):
    """Its usage records and budget_exhausted events go to the shared database: never migrated by authz."""
    config = with_control_plane(mint_config(tmp_path, keyring_file), postgres_url)
    doc = yaml.safe_load(config.read_text())
    config.write_text(yaml.safe_dump({**doc, "authz": {"listen": free_address()}}))
    line = refused_line([sys.executable, "-m", "satgate_cli", "authz", "--config", str(config)])
    assert "control_plane" in line and "satgate db upgrade" in line, line


def test_usage_from_an_unreachable_control_plane_is_one_line(tmp_path, keyring_file):
    config = with_control_plane(mint_config(tmp_path, keyring_file), f"postgresql://satgate@{free_address()}/satgate")
    line = refused_line([sys.executable, "-m", "satgate_cli", "usage", "--config", str(config)])
    assert "control_plane: cannot use" in line, line
