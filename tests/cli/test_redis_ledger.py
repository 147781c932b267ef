"""Every CLI command that touches the ledger or the audit log, against a real private Redis, as operators run them
(separate processes): each succeeds, prints what it promises and never a traceback."""

import json
import subprocess
import sys

import pytest
import yaml

from satgate_dev.redis_server import RedisServer


@pytest.fixture
def redis_config(tmp_path):
    redis = RedisServer(tmp_path / "redis").start()
    config = tmp_path / "satgate.yaml"
    config.write_text(yaml.safe_dump({"keyring": "keyring.json", "ledger": redis.url}))
    yield redis, config
    redis.stop()


def satgate(config, *args: str, input: str | None = None) -> subprocess.CompletedProcess:
    result = subprocess.run(
        [sys.executable, "-m", "satgate_cli", *args, "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
        input=input,
    )
    assert "Traceback" not in result.stderr, result.stderr
    return result


def ok(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_every_ledger_and_audit_command_works_on_redis(redis_config):
    redis, config = redis_config
    assert ok(satgate(config, "keys", "init")).startswith("created")
    assert "initialised the ledger" in ok(satgate(config, "ledger", "init"))
    assert "already initialised" in ok(satgate(config, "ledger", "init"))
    token = ok(satgate(config, "token", "mint", "--tenant", "acme", "--budget", "5", "--ttl", "1h")).strip()
    assert token.startswith("A")
    inspected = json.loads(ok(satgate(config, "token", "inspect", token)))
    assert (inspected["valid"], inspected["revoked"], inspected["remaining"]) == (True, False, 5)
    child = ok(satgate(config, "token", "attenuate", token, "--budget", "2")).strip()
    delegated = ok(satgate(config, "token", "delegate", child, "--budget", "1", "--ttl", "5m"))
    assert delegated.strip()
    revoked = json.loads(ok(satgate(config, "token", "revoke", token, "--reason", "test")))
    assert revoked["revoked"] == inspected["token_id"]
    assert redis.cli("sismember", "sg:{acme}:revoked:ids", inspected["token_id"]).strip() == "1"
    assert json.loads(ok(satgate(config, "token", "inspect", child)))["revoked"] is True
    by_id = satgate(config, "token", "revoke", "--id", "d" * 32, "--tenant", "acme", "--pre-revoke")
    ok(by_id)
    ok(satgate(config, "keys", "rotate"))
    exported = [json.loads(line) for line in ok(satgate(config, "audit", "export")).splitlines()]
    assert [r["type"] for r in exported] == ["mint", "revoke", "revoke", "key_rotation"]
    assert ok(satgate(config, "audit", "export", "--format", "csv")).startswith("seq,time,type")
    verified = json.loads(ok(satgate(config, "audit", "verify")))
    assert (verified["ok"], verified["records"]) == (True, 4)


def test_a_redis_that_is_down_is_one_clear_line(redis_config):
    redis, config = redis_config
    ok(satgate(config, "keys", "init"))
    redis.stop()
    revoke = ("token", "revoke", "--id", "d" * 32, "--tenant", "acme")
    for args in (("ledger", "init"), revoke, (*revoke, "--pre-revoke")):
        result = satgate(config, *args)
        assert result.returncode != 0
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr
        assert "redis" in result.stderr.lower()
