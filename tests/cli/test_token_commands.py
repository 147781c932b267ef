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
    token = run("token", "mint", "--config", str(config), "--tenant", "acme").stdout.strip()
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
    ok = run("token", "revoke", "--config", str(config), "--id", "a" * 32, "--tenant", "acme", "--pre-revoke")
    assert json.loads(ok.stdout) == {
        "revoked": "a" * 32,
        "tenant": "acme",
        "recorded_as": None,
        "already_revoked": False,
    }


def test_revoke_says_plainly_when_nothing_carries_the_id(config, tmp_path):
    run("keys", "init", "--config", str(config))
    minted = json.loads(run("token", "mint", "-c", str(config), "--tenant", "acme", "--scope", "a:b", "--json").stdout)
    typo = run("token", "revoke", "--config", str(config), "--id", minted["token_id"], "--tenant", "acmee")
    assert typo.exit_code != 0 and "nothing this deployment recorded carries id" in typo.stderr
    assert "'acmee'" in typo.stderr and "--pre-revoke" in typo.stderr
    assert json.loads(run("token", "inspect", "-c", str(config), minted["token"]).stdout)["revoked"] is False
    by_id = run("token", "revoke", "--config", str(config), "--id", minted["token_id"], "--tenant", "acme")
    assert json.loads(by_id.stdout)["recorded_as"] == "token"
    assert json.loads(run("token", "inspect", "-c", str(config), minted["token"]).stdout)["revoked"] is True


def test_revoking_a_delegated_child_by_string_spares_its_parent(config):
    run("keys", "init", "--config", str(config))
    parent = run("token", "mint", "-c", str(config), "--tenant", "acme", "--scope", "a:b").stdout.strip()
    child = json.loads(run("token", "delegate", "-c", str(config), parent, "--budget", "1", "--json").stdout)
    revoked = json.loads(run("token", "revoke", "--config", str(config), child["token"]).stdout)
    assert (revoked["revoked"], revoked["recorded_as"]) == (child["delegation_id"], "delegation")
    assert json.loads(run("token", "inspect", "-c", str(config), child["token"]).stdout)["revoked"] is True
    assert json.loads(run("token", "inspect", "-c", str(config), parent).stdout)["revoked"] is False


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


def caveats_of(config, token: str) -> list[str]:
    return json.loads(run("token", "inspect", "--config", str(config), token).stdout)["caveats"]


def test_mint_without_flags_expires_at_max_ttl_and_warns_what_it_reaches(config):
    import time

    from satgate.timefmt import parse_utc

    run("keys", "init", "--config", str(config))
    minted = run("token", "mint", "--config", str(config), "--tenant", "acme")
    assert minted.exit_code == 0
    assert "no --scope: this token passes every route's scope check" in minted.stderr
    assert "no --budget: this token spends without limit" in minted.stderr
    (expires,) = [c.removeprefix("expires = ") for c in caveats_of(config, minted.stdout.strip()) if "expires" in c]
    assert abs(parse_utc(expires) - (time.time() + 24 * 3600)) < 60  # mint.max_ttl's default
    quiet = run("token", "mint", "--config", str(config), "--tenant", "acme", "--scope", "api:*", "--budget", "5")
    assert quiet.exit_code == 0 and quiet.stderr == ""


def test_mint_refuses_a_ttl_past_max_ttl_and_mints_no_expiry_only_by_name(config, tmp_path):
    run("keys", "init", "--config", str(config))
    too_long = run("token", "mint", "--config", str(config), "--tenant", "acme", "--ttl", "3650d")
    assert too_long.exit_code != 0 and "longer than mint.max_ttl (24h)" in too_long.stderr
    assert too_long.stdout == ""
    sneaky = run("token", "mint", "-c", str(config), "--tenant", "acme", "--caveat", "expires=2099-01-01T00:00:00Z")
    assert sneaky.exit_code != 0 and "--ttl" in sneaky.stderr
    doc = yaml.safe_load(config.read_text())
    config.write_text(yaml.safe_dump({**doc, "mint": {"max_ttl": "30d"}}))
    assert run("token", "mint", "--config", str(config), "--tenant", "acme", "--ttl", "7d").exit_code == 0
    forever = run("token", "mint", "--config", str(config), "--tenant", "acme", "--no-expiry", "--scope", "a:b")
    assert forever.exit_code == 0 and "no expiry: this token works until it is revoked" in forever.stderr
    assert not [c for c in caveats_of(config, forever.stdout.strip()) if c.startswith("expires")]
    both = run("token", "mint", "--config", str(config), "--tenant", "acme", "--no-expiry", "--ttl", "1h")
    assert both.exit_code != 0


def test_delegate_prints_the_bare_token_and_the_child_expires_with_its_parent(config):
    from satgate.timefmt import parse_utc

    run("keys", "init", "--config", str(config))
    parent = run("token", "mint", "-c", str(config), "--tenant", "acme", "--scope", "api:*", "--ttl", "10m").stdout
    child = run("token", "delegate", "--config", str(config), parent.strip(), "--budget", "2").stdout.strip()
    assert child.startswith("A") and "\n" not in child  # $(satgate token delegate …) feeds the next command
    assert json.loads(run("token", "inspect", "--config", str(config), child).stdout)["valid"]
    as_json = json.loads(run("token", "delegate", "-c", str(config), parent.strip(), "--ttl", "48h", "--json").stdout)
    (parent_expiry,) = [c for c in caveats_of(config, parent.strip()) if c.startswith("expires")]
    assert parse_utc(as_json["expires_at"]) == pytest.approx(parse_utc(parent_expiry.removeprefix("expires = ")), abs=1)


def test_budget_window_on_mint_attenuate_and_delegate(config):
    """--budget-window adds a windowed bucket (a typo is a usage error naming the flag); the SDK's offline
    delegation adds the same caveat."""
    from satgate_sdk import delegate_offline

    run("keys", "init", "--config", str(config))
    parent = run(
        "token", "mint", "-c", str(config), "--tenant", "acme", "--scope", "api:*", "--budget-window", "500/1d"
    ).stdout.strip()
    child = run("token", "delegate", "-c", str(config), parent, "--budget-window", "20/1h").stdout.strip()
    narrowed = run("token", "attenuate", "-c", str(config), child, "--budget-window", "100/month").stdout.strip()
    sdk_child = delegate_offline(narrowed, budget_window="5/30m").token
    keyring = load_keyring(config.parent / "keys" / "keyring.json")
    buckets = TokenVerifier(keyring, attribute_keys={"department"}).verify(sdk_child).buckets
    assert [(b.limit, str(b.period)) for b in buckets] == [(500, "1d"), (20, "1h"), (100, "month"), (5, "30m")]
    refused = CliRunner().invoke(cli, ["token", "delegate", "-c", str(config), parent, "--budget-window", "20/week"])
    assert refused.exit_code == 2 and "--budget-window" in refused.output and "500/1d" in refused.output
    with pytest.raises(ValueError, match="budget_window"):
        delegate_offline(parent, budget_window="20")
