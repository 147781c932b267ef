"""`satgate audit verify --file EXPORT [--expect-head HASH] [--partial]`: an exported chain checked without the
store — edits, removals, a cut end and a tenant-filtered export each said plainly (issue 23)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml


def satgate(*args: str, config: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "satgate_cli", *args, "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.fixture
def chain(tmp_path) -> tuple[Path, list[dict]]:
    """A chain of two tenants' records (mints and a pre-revocation), exported whole."""
    config = tmp_path / "satgate.yaml"
    config.write_text(yaml.safe_dump({"state_dir": "."}))
    assert satgate("keys", "init", config=config).returncode == 0
    for tenant in ("acme", "globex", "acme", "globex", "acme"):
        assert (
            satgate("token", "mint", "--tenant", tenant, "--scope", "a:b", "--budget", "1", config=config).returncode
            == 0
        )
    exported = satgate("audit", "export", config=config).stdout
    return config, [json.loads(line) for line in exported.splitlines()]


def verify_file(config: Path, records: list[dict], tmp_path: Path, *flags: str) -> tuple[int, dict]:
    path = tmp_path / "export.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    done = satgate("audit", "verify", "--file", str(path), *flags, config=config)
    return done.returncode, json.loads(done.stdout)


def test_a_whole_export_verifies_and_ends_at_the_stores_head(chain, tmp_path):
    config, records = chain
    store = json.loads(satgate("audit", "verify", config=config).stdout)
    code, result = verify_file(config, records, tmp_path, "--expect-head", store["head"])
    assert (code, result) == (0, {"ok": True, "records": 5, "complete": True, "head": store["head"]})
    assert satgate("audit", "verify", "--expect-head", store["head"], config=config).returncode == 0


def test_an_edited_a_removed_and_a_cut_record_are_caught(chain, tmp_path):
    config, records = chain
    edited = [dict(r) for r in records]
    edited[2]["tenant"] = "intruder"
    assert verify_file(config, edited, tmp_path) == (1, {"ok": False, "edited_at_seq": records[2]["seq"]})
    code, result = verify_file(config, records[:1] + records[2:], tmp_path)
    assert (code, result["unlinked_at_seq"]) == (1, records[2]["seq"])
    code, result = verify_file(config, records[:-1], tmp_path, "--expect-head", records[-1]["hash"])
    assert (code, result["ok"], result["head"]) == (1, False, records[-2]["hash"])


def test_a_tenant_filtered_export_proves_each_record_and_says_it_cannot_prove_completeness(chain, tmp_path):
    config, _ = chain
    done = satgate("audit", "export", "--tenant", "acme", config=config)
    assert "tenant-filtered export" in done.stderr
    acme = [json.loads(line) for line in done.stdout.splitlines()]
    assert len(acme) == 3
    code, result = verify_file(config, acme, tmp_path)
    assert code == 1 and "--partial" in result["note"]
    code, result = verify_file(config, acme, tmp_path, "--partial")
    assert (code, result["ok"], result["each_record_intact"], result["complete"]) == (0, True, True, None)
    acme[1]["actor"] = "someone else"
    assert verify_file(config, acme, tmp_path, "--partial") == (1, {"ok": False, "edited_at_seq": acme[1]["seq"]})


def test_a_file_that_is_not_an_export_is_one_clear_line(chain, tmp_path):
    config, records = chain
    (tmp_path / "junk.txt").write_text("seq,time,type\n")
    done = satgate("audit", "verify", "--file", str(tmp_path / "junk.txt"), config=config)
    assert done.returncode != 0 and "not JSON lines" in done.stderr and "Traceback" not in done.stderr
    old = [{k: v for k, v in r.items() if k != "prev_hash"} for r in records]
    (tmp_path / "old.jsonl").write_text("".join(json.dumps(r) + "\n" for r in old))
    done = satgate("audit", "verify", "--file", str(tmp_path / "old.jsonl"), config=config)
    assert done.returncode != 0 and "has no prev_hash" in done.stderr


def test_prune_then_verify_proves_the_retained_part(chain, tmp_path):
    """`satgate audit prune` removes what is past the retention after a signed checkpoint; `audit verify` still
    proves every retained record (with the keyring) and catches an edit of one."""
    import asyncio
    import sqlite3
    import time

    from satgate.audit import AuditEvent
    from satgate.config import load_config
    from satgate.timefmt import format_utc

    config, _ = chain
    settings = load_config(config)

    async def backdate() -> None:  # records from 100 days ago ahead of the fixture's
        log = settings.open_audit_log()
        try:
            for i in range(3):
                await log.append(
                    AuditEvent(type="mint", tenant="acme", actor=f"old{i}", time=format_utc(time.time() - 100 * 86400))
                )
            await log.append(AuditEvent(type="mint", tenant="acme", actor="recent"))
        finally:
            await log.close()

    path = Path(settings.mint.audit_log)
    db = sqlite3.connect(path)
    db.execute("DELETE FROM audit")  # start the chain with the old records
    db.commit()
    asyncio.run(backdate())
    pruned = satgate("audit", "prune", config=config)
    assert pruned.returncode == 0, pruned.stderr
    assert json.loads(pruned.stdout)["removed"] == 3
    verified = satgate("audit", "verify", config=config)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert json.loads(verified.stdout)["records"] == 2  # "recent" and the checkpoint

    seq, record = db.execute("SELECT seq, record FROM audit ORDER BY seq LIMIT 1").fetchone()
    db.execute("UPDATE audit SET record = ? WHERE seq = ?", (record.replace("recent", "edited"), seq))
    db.commit()
    db.close()
    tampered = satgate("audit", "verify", config=config)
    assert tampered.returncode == 1 and json.loads(tampered.stdout)["broken_at_seq"] == seq
