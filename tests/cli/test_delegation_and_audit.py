"""Offline delegation (CLI, SDK) judged by the real check pipeline, and the audit CLI against tampering."""

import asyncio
import json
import sqlite3

import pytest
import yaml
from click.testing import CliRunner

from authz_server.check import CheckSettings
from satgate.audit import AuditEvent, SqliteAuditLog
from satgate.ledger.url import open_ledger
from satgate.routes import RouteTable
from satgate.tokens.mint import mint
from satgate.tokens.verify import TokenVerifier
from satgate_cli import cli
from satgate_sdk import delegate_offline

from ..authz.conftest import check_request, grpc_pipeline, status_of


@pytest.fixture
def config(tmp_path, keyring_file):
    path = tmp_path / "satgate.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "keyring": str(keyring_file),
                "ledger": f"sqlite:///{tmp_path}/ledger.db",
                "mint": {"audit_log": str(tmp_path / "audit.db")},
            }
        )
    )
    assert CliRunner().invoke(cli, ["ledger", "init", "--config", str(path)]).exit_code == 0
    return path


async def test_offline_children_are_accepted_and_revocable_on_their_own(tmp_path, keyring, config):
    parent = mint(keyring, "acme", [("scope", "api:*"), ("budget", "10")]).token
    cli_child = json.loads(
        CliRunner()
        .invoke(
            cli,
            [
                "token",
                "delegate",
                "--config",
                str(config),
                parent,
                "--budget",
                "2",
                "--scope",
                "api:read",
                "--ttl",
                "5m",
                "--json",
            ],
        )
        .output
    )
    sdk_child = delegate_offline(parent, budget_credits=3, label="worker")
    ledger = open_ledger(f"sqlite:///{tmp_path}/ledger.db")
    pipeline = grpc_pipeline(
        verifier=TokenVerifier(keyring), ledger=ledger, routes=RouteTable(), settings=CheckSettings()
    )
    for token in (cli_child["token"], sdk_child.token, parent):
        assert status_of(await pipeline.check(check_request(token))) == 200
    assert TokenVerifier(keyring).verify(cli_child["token"]).revocation_ids[1] == cli_child["delegation_id"]
    await ledger.revoke("acme", cli_child["delegation_id"])
    assert status_of(await pipeline.check(check_request(cli_child["token"]))) == 401
    assert status_of(await pipeline.check(check_request(sdk_child.token))) == 200
    assert status_of(await pipeline.check(check_request(parent))) == 200
    await ledger.close()


def test_offline_delegation_refuses_junk(config):
    result = CliRunner().invoke(cli, ["token", "delegate", "--config", str(config), "not-a-token"])
    assert result.exit_code != 0


def fill_audit(path, count=5):
    log = SqliteAuditLog(path)
    for i in range(count):
        asyncio.run(log.append(AuditEvent(type="exchange", tenant="acme" if i % 2 else "globex", actor=f"a{i}")))
    return log


def test_audit_export_and_verify(tmp_path, config):
    fill_audit(tmp_path / "audit.db")
    runner = CliRunner()
    lines = runner.invoke(cli, ["audit", "export", "--config", str(config)]).output.splitlines()
    assert [json.loads(line)["actor"] for line in lines] == ["a0", "a1", "a2", "a3", "a4"]
    acme = runner.invoke(cli, ["audit", "export", "--config", str(config), "--tenant", "acme", "--format", "csv"])
    assert acme.stdout.splitlines()[0].startswith("seq,time,type,tenant")
    assert len(acme.stdout.splitlines()) == 3
    ok = runner.invoke(cli, ["audit", "verify", "--config", str(config)])
    assert ok.exit_code == 0
    assert json.loads(ok.output)["records"] == 5


@pytest.mark.parametrize(
    ("tamper", "broken"),
    [
        ("UPDATE audit SET record = replace(record, '\"a2\"', '\"mallory\"') WHERE seq = 3", 3),
        ("DELETE FROM audit WHERE seq = 2", 3),
        ("UPDATE audit SET hash = '" + "0" * 64 + "' WHERE seq = 4", 4),
    ],
)
def test_audit_verify_detects_edits_and_deletions(tmp_path, config, tamper, broken):
    fill_audit(tmp_path / "audit.db")
    db = sqlite3.connect(tmp_path / "audit.db")
    db.execute(tamper)
    db.commit()
    db.close()
    result = CliRunner().invoke(cli, ["audit", "verify", "--config", str(config)])
    assert result.exit_code == 1
    assert json.loads(result.output) == {"ok": False, "broken_at_seq": broken}


def test_cli_mint_and_revoke_are_audited(tmp_path, config):
    from satgate.audit import EVENT_TYPES

    runner = CliRunner()
    minted = json.loads(
        runner.invoke(
            cli, ["token", "mint", "--config", str(config), "--tenant", "acme", "--budget", "5", "--json"]
        ).stdout
    )
    runner.invoke(cli, ["token", "revoke", "--config", str(config), minted["token"], "--reason", "test"])
    records = [record for _seq, record, _prev, _hash in asyncio.run(SqliteAuditLog(tmp_path / "audit.db").records())]
    assert [(r["type"], r["token_id"], r["actor"]) for r in records] == [
        ("mint", minted["token_id"], "cli"),
        ("revoke", minted["token_id"], "cli"),
    ]
    assert minted["token"] not in str(records)
    assert {r["type"] for r in records} <= set(EVENT_TYPES)
