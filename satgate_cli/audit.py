"""`satgate audit`: export and verify the hash-chained audit log."""

from __future__ import annotations

import asyncio
import json
import sys

import click

from satgate_cli.common import (
    _config,
    _keyring,
    config_option,
)


@click.group()
def audit() -> None:
    """Export and verify the hash-chained audit log."""


@audit.command("export")
@config_option
@click.option("--format", "fmt", type=click.Choice(["json", "csv"]), default="json", show_default=True)
@click.option("--tenant", help="only this tenant's records")
def audit_export(config_path, fmt, tenant) -> None:
    """Print every record (JSON lines or CSV), with its prev_hash and hash: `audit verify --file` checks it."""
    from satgate.audit import audit_csv  # noqa: PLC0415
    from satgate.audit.export import exported  # noqa: PLC0415

    config = _config(config_path)

    async def read() -> list[dict]:
        log = config.open_audit_log()
        try:
            return [
                exported(seq, record, prev, digest)
                for seq, record, prev, digest in await log.records()
                if tenant is None or record.get("tenant") == tenant
            ]
        finally:
            await log.close()

    records = asyncio.run(read())
    if tenant is not None:
        click.echo(
            "note: a tenant-filtered export: each record verifies on its own (audit verify --file F --partial); "
            "that none is missing can be checked only on the whole chain",
            err=True,
        )
    if fmt == "csv":
        click.echo(audit_csv(records), nl=False)
    else:
        for record in records:
            click.echo(json.dumps(record, sort_keys=True))


@audit.command("verify")
@config_option
@click.option("--file", "export_file", type=click.File("r"), help="an export (JSON lines) instead of the store")
@click.option("--partial", is_flag=True, help="the file is a filtered export (--tenant): check each record only")
@click.option("--expect-head", help="the head hash kept elsewhere: the chain must end exactly there")
def audit_verify(config_path, export_file, partial, expect_head) -> None:
    """Recompute the chain — the store's, or an exported file's. Exit 1 at the first edited, removed or
    reordered record. Keep the printed head hash somewhere else and pass it as --expect-head: only an outside
    copy shows that records were cut from the end."""
    if export_file is not None:
        _verify_file(export_file, partial, expect_head)
        return
    if partial:
        raise click.UsageError("--partial applies to --file")

    config = _config(config_path)

    async def check() -> tuple[object, list]:
        from satgate.audit import GENESIS  # noqa: PLC0415
        from satgate.audit.retention import verify_retained  # noqa: PLC0415

        log = config.open_audit_log()
        try:
            records = await log.records()
            if not records or records[0][2] == GENESIS:  # nothing pruned: no key needed to check the chain
                broken = await log.verify()
                return broken, records if broken is None else []
            broken, records = await verify_retained(log, _keyring(config))  # a signed checkpoint must vouch
            return broken, records if broken is None else []
        finally:
            await log.close()

    broken, records = asyncio.run(check())
    if broken is not None:
        _fail({"ok": False, "broken_at_seq": broken})
    head = records[-1][3] if records else None
    _check_head(head, expect_head, len(records))
    click.echo(json.dumps({"ok": True, "records": len(records), "head": head}))


def _verify_file(export_file, partial: bool, expect_head: str | None) -> None:
    from satgate.audit.export import ExportFormatError, check_export  # noqa: PLC0415

    try:
        check = check_export(json.loads(line) for line in export_file if line.strip())
    except json.JSONDecodeError as exc:
        raise click.ClickException(f"{export_file.name}: not JSON lines ({exc}); export with --format json") from None
    except ExportFormatError as exc:
        raise click.ClickException(f"{export_file.name}: {exc}") from None
    if not check.each_record_intact:
        _fail({"ok": False, "edited_at_seq": check.edited_at})
    if partial:
        click.echo(
            json.dumps(
                {
                    "ok": True,
                    "records": check.records,
                    "each_record_intact": True,
                    "complete": None,  # not checkable: other tenants' records sit between these links
                    "note": "a filtered export proves each record, not that none is missing",
                }
            )
        )
        return
    if not check.complete:
        _fail(
            {
                "ok": False,
                "unlinked_at_seq": check.unlinked_at,
                "note": "a record does not follow the one before it: records were removed, or this is a filtered "
                "export (verify it with --partial)",
            }
        )
    _check_head(check.head, expect_head, check.records)
    click.echo(json.dumps({"ok": True, "records": check.records, "complete": True, "head": check.head}))


def _check_head(head: str | None, expect_head: str | None, records: int) -> None:
    if expect_head is not None and head != expect_head:
        _fail(
            {
                "ok": False,
                "records": records,
                "head": head,
                "expected_head": expect_head,
                "note": "the chain does not end at the expected head: records were cut from the end, or replaced",
            }
        )


def _fail(result: dict) -> None:
    click.echo(json.dumps(result))
    sys.exit(1)


@audit.command("prune")
@config_option
@click.option(
    "--older-than-days",
    type=click.FloatRange(min=1),
    help="the retention  [default: mint.audit_retention_days, 90]",
)
def audit_prune(config_path, older_than_days) -> None:
    """Remove records older than the retention, after appending a checkpoint of the last one removed, signed with
    a key derived from the keyring: `satgate audit verify` still proves every retained record. The Mint does this
    hourly by itself."""
    from satgate.audit.retention import prune  # noqa: PLC0415

    config = _config(config_path)
    days = older_than_days or config.mint.audit_retention_days

    async def run():
        log = config.open_audit_log()
        try:
            return await prune(log, _keyring(config), retention_days=days)
        finally:
            await log.close()

    pruned = asyncio.run(run())
    removed = pruned.removed if pruned else 0
    click.echo(
        json.dumps(
            {"removed": removed, "retention_days": days, "through_seq": str(pruned.through_seq) if pruned else None}
        )
    )
