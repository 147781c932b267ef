"""Servers on a PostgreSQL control plane: two Mint processes on one database share it (a delegation recorded by
one is listed by the other, a trust policy revoked through one stops issuance on the other at once), and Mint and
authz servers refuse a database that `satgate db upgrade` has not brought to their schema."""

import asyncio
import sys
import time

import aiohttp
import pytest
import yaml

from satgate.keyring import load_keyring
from tests.mint.conftest import oidc_policy, policies, serve_idp
from tests.mint.test_admin import admin_token, bearer
from tests.mint.test_admin_api import managed_policy
from tests.servers.conftest import free_address, mint_config, refused_line, satgate_ok, start_mint, wait_for_event


def with_control_plane(config, url: str, *, ledger: str | None = None):
    doc = yaml.safe_load(config.read_text())
    config.write_text(yaml.safe_dump({**doc, "control_plane": url, "ledger": ledger or doc["ledger"]}))
    return config


def test_a_mint_refuses_a_database_behind_its_schema_in_one_line(tmp_path, keyring_file, postgres_url):
    config = with_control_plane(mint_config(tmp_path, keyring_file, listen=free_address()), postgres_url)
    line = refused_line([sys.executable, "-m", "satgate_cli", "mint", "--config", str(config)])
    assert "control_plane" in line and "satgate db upgrade" in line, line
    assert "upgraded the control plane" in satgate_ok("db", "upgrade", "--config", str(config))
    assert "nothing to do" in satgate_ok("db", "upgrade", "--config", str(config))
    assert "this SatGate's" in satgate_ok("db", "status", "--config", str(config))


async def test_two_mint_processes_share_delegations_policy_revocations_and_used_jwts(
    tmp_path, keyring_file, postgres_server, postgres_url
):
    idp, idp_runner = await serve_idp()
    policy_file = tmp_path / "policies.yaml"
    once = oidc_policy(idp.issuer, name="ci-once", match='sub: "ci-*"', extra="jwt_reuse: once")
    policy_file.write_text(policies(oidc_policy(idp.issuer), once))
    configs, procs, urls = [], [], []
    for name in ("a", "b"):
        listen = free_address()
        config = mint_config(
            tmp_path / name, keyring_file, listen=listen, grpc_listen=free_address(), policies=str(policy_file)
        )
        shared_ledger = f"sqlite:///{tmp_path}/a/ledger.db"  # replicas share the ledger too (Redis across hosts)
        configs.append(with_control_plane(config, postgres_url, ledger=shared_ledger))
        urls.append(f"http://{listen}")
    satgate_ok("db", "upgrade", "--config", str(configs[0]))
    admin = bearer(admin_token(load_keyring(keyring_file)))
    try:
        for config in configs:
            procs.append(start_mint(config))
            wait_for_event(procs[-1], "mint_listening")
        async with aiohttp.ClientSession() as http:
            one, two = urls

            async def exchange(base: str, jwt: str | None = None):
                body = {"credentials": jwt or idp.token("agent-1", "satgate")}
                async with http.post(f"{base}/api/mint/exchange", json=body) as response:
                    return response.status, await response.json()

            # jwt_reuse: once holds across replicas: a JWT exchanged at one is refused at the other, and the
            # same JWT sent to both at once is exchanged by exactly one (with a jti, and without one).
            ci = idp.token("ci-1", "satgate", jti="run-1")
            assert (await exchange(one, ci))[0] == 200
            status, replayed = await exchange(two, ci)
            assert (status, replayed["error"]) == (401, "replayed")
            for index in range(8):
                jwt = idp.token(f"ci-race-{index}", "satgate", **({"jti": f"race-{index}"} if index % 2 else {}))
                raced = await asyncio.gather(exchange(one, jwt), exchange(two, jwt), exchange(one, jwt))
                assert sorted(status for status, _ in raced) == [200, 401, 401], raced
            assert (await exchange(two, idp.token("ci-1", "satgate", jti="run-2")))[0] == 200  # a new jti: fresh
            assert [(await exchange(base))[0] for base in (one, two, one)] == [200, 200, 200]  # reuse: the default

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

            # A trust policy created through one replica issues on the other from its next exchange on; the
            # registry and budget changes are shared too.
            async with http.post(
                f"{two}/api/admin/policies", headers=admin, json={"document": managed_policy(idp.issuer)}
            ) as response:
                assert response.status == 200, await response.text()
            body = {"credentials": idp.token("bot-1", "satgate")}
            async with http.post(f"{one}/api/mint/exchange", json=body) as response:
                bot = await response.json()
                assert (response.status, bot["policy"]) == (200, "managed")
            async with http.post(
                f"{one}/api/admin/budgets", headers=admin, json={"id": bot["token_id"], "delta": 3}
            ) as response:
                assert (await response.json())["remaining"] == 10
            async with http.get(f"{two}/api/admin/tokens/{bot['token_id']}", headers=admin) as response:
                detail = await response.json()
            assert (detail["token"]["remaining"], [c["delta"] for c in detail["budget_changes"]]) == (10, [3])

            # The database goes away: every call that needs it answers 503 and changes nothing (never 500).
            database = postgres_url.rsplit("/", 1)[1]
            postgres_server.psql(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS false')
            postgres_server.psql(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{database}'")
            try:
                async with http.post(f"{one}/api/mint/exchange", json=body) as response:
                    assert response.status == 503, await response.text()
                async with http.get(f"{two}/api/admin/tokens", headers=admin) as response:
                    assert response.status == 503, await response.text()
            finally:
                postgres_server.psql(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS true')
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
