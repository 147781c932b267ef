import json
import stat

import pytest
import yaml
from click.testing import CliRunner

from satgate.keyring import load_keyring
from satgate.tokens.verify import TokenVerifier
from satgate_cli import cli
from satgate_cli.common import parse_duration


@pytest.fixture
def config(tmp_path):
    path = tmp_path / "satgate.yaml"
    path.write_text(
        yaml.safe_dump(
            {"keyring": "keys/keyring.json", "ledger": "sqlite:///ledger.db", "authz": {"attributes": ["department"]}}
        )
    )
    assert CliRunner().invoke(cli, ["ledger", "init", "--config", str(path)]).exit_code == 0
    return path


def run(*args: str, input: str | None = None):
    result = CliRunner().invoke(cli, list(args), input=input, catch_exceptions=False)
    return result


def test_keys_init_creates_a_0600_keyring_once(config, tmp_path):
    first = run("keys", "init", "--config", str(config))
    assert first.exit_code == 0 and first.output.startswith("created")
    assert stat.S_IMODE((tmp_path / "keys" / "keyring.json").stat().st_mode) == 0o600
    assert run("keys", "init", "--config", str(config)).output.startswith("exists")


def test_mint_inspect_attenuate_revoke(config, tmp_path):
    run("keys", "init", "--config", str(config))
    minted = run(
        "token",
        "mint",
        "--config",
        str(config),
        "--tenant",
        "acme",
        "--scope",
        "api:*",
        "--budget",
        "50",
        "--ttl",
        "8h",
        "--caveat",
        "department=eng",
        "--json",
    )
    assert minted.exit_code == 0, minted.output
    doc = json.loads(minted.output)
    verifier = TokenVerifier(load_keyring(tmp_path / "keys" / "keyring.json"), attribute_keys=["department"])
    assert verifier.verify(doc["token"]).token_id == doc["token_id"]

    child = run("token", "attenuate", "--config", str(config), doc["token"], "--budget", "5", "--scope", "api:read")
    assert child.exit_code == 0
    inspected = json.loads(run("token", "inspect", "--config", str(config), child.output.strip()).output)
    assert inspected["valid"] and inspected["tenant"] == "acme"
    assert inspected["caveats"][-2:] == ["scope = api:read", "budget = 5"]
    assert inspected["remaining"] == 5
    assert "department = eng" in inspected["caveats"]

    revoked = run("token", "revoke", "--config", str(config), doc["token"], "--reason", "test")
    assert json.loads(revoked.output)["revoked"] == doc["token_id"]
    after = run("token", "inspect", "--config", str(config), child.output.strip())
    assert json.loads(after.output)["revoked"] is True


def test_attenuate_reads_stdin_and_refuses_bad_caveats(config):
    run("keys", "init", "--config", str(config))
    token = run("token", "mint", "--config", str(config), "--tenant", "acme").output.strip()
    assert run("token", "attenuate", "--config", str(config), "-", "--ttl", "1h", input=token).exit_code == 0
    bad = run("token", "attenuate", "--config", str(config), token, "--caveat", "colour=red")
    assert bad.exit_code != 0 and "unknown caveat 'colour'" in bad.output


def test_inspect_reports_a_forged_token_invalid(config):
    run("keys", "init", "--config", str(config))
    token = run("token", "mint", "--config", str(config), "--tenant", "acme", "--budget", "5").output.strip()
    forged = token[:-4] + ("AAAA" if token[-4:] != "AAAA" else "BBBB")
    result = run("token", "inspect", "--config", str(config), forged)
    assert result.exit_code == 1
    assert json.loads(result.output)["valid"] is False


def test_revoke_by_id_validates_input(config):
    run("keys", "init", "--config", str(config))
    assert run("token", "revoke", "--config", str(config), "--id", "nothex", "--tenant", "acme").exit_code != 0
    ok = run("token", "revoke", "--config", str(config), "--id", "a" * 32, "--tenant", "acme")
    assert json.loads(ok.output) == {"revoked": "a" * 32, "tenant": "acme", "already_revoked": False}


def test_mint_refuses_a_bad_tenant(config):
    run("keys", "init", "--config", str(config))
    result = run("token", "mint", "--config", str(config), "--tenant", "Not_Valid")
    assert result.exit_code != 0 and "tenant" in result.output


@pytest.mark.parametrize(("text", "seconds"), [("90s", 90), ("90m", 5400), ("8h", 28800), ("7d", 604800)])
def test_durations(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["8", "h", "0h", "-1h", "1w", "1.5h"])
def test_bad_durations(text):
    import click

    with pytest.raises(click.BadParameter):
        parse_duration(text)


def test_config_errors_name_the_field(tmp_path):
    path = tmp_path / "satgate.yaml"
    path.write_text("authz:\n  leeway_seconds: -3\n")
    result = run("token", "mint", "--config", str(path), "--tenant", "acme")
    assert result.exit_code != 0
    assert "authz.leeway_seconds" in result.output
    path.write_text("authz: [unclosed\n")
    assert "not valid YAML" in run("token", "mint", "--config", str(path), "--tenant", "a").output


def test_mint_refuses_bad_trust_policies_naming_the_field(tmp_path):
    import subprocess
    import sys

    from satgate.keyring import Keyring, write_keyring

    write_keyring(tmp_path / "keyring.json", Keyring.generate())
    (tmp_path / "policies.yaml").write_text(
        "policies:\n  - {name: p, provider: oidc, issuer: 'https://idp', audience: a, tenant: acme,\n"
        "     trust_rules: [{issue: {ttl: soon}}]}\n"
    )
    (tmp_path / "satgate.yaml").write_text("keyring: keyring.json\nmint: {policies: policies.yaml}\n")
    result = subprocess.run(
        [sys.executable, "-m", "satgate_cli", "mint", "--config", str(tmp_path / "satgate.yaml")],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode != 0
    assert "policies.0.trust_rules.0.issue.ttl" in result.stderr
