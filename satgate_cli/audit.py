"""`satgate audit`: export and verify the hash-chained audit log."""

from __future__ import annotations

import asyncio
import json
import sys

import click

from satgate_cli.common import (
    _config,
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
    """Print every record (JSON lines or CSV), with its chain hash."""
    from satgate.audit import audit_csv, open_audit_log  # noqa: PLC0415

    config = _config(config_path)
    log = open_audit_log(config.ledger, config.mint.audit_log)
    try:
        records = [
            {"seq": seq, **record, "hash": digest}
            for seq, record, _prev, digest in log.records()
            if tenant is None or record.get("tenant") == tenant
        ]
    finally:
        asyncio.run(log.close())
    if fmt == "csv":
        click.echo(audit_csv(records), nl=False)
    else:
        for record in records:
            click.echo(json.dumps(record, sort_keys=True))


@audit.command("verify")
@config_option
def audit_verify(config_path) -> None:
    """Recompute the chain. Exit 1 at the first edited, removed or reordered record. Keep the printed head hash
    somewhere else: only an outside copy shows that records were cut from the end."""
    from satgate.audit import open_audit_log  # noqa: PLC0415

    config = _config(config_path)
    log = open_audit_log(config.ledger, config.mint.audit_log)
    try:
        broken = log.verify()
        records = list(log.records()) if broken is None else []
    finally:
        asyncio.run(log.close())
    if broken is not None:
        click.echo(json.dumps({"ok": False, "broken_at_seq": broken}))
        sys.exit(1)
    head = records[-1][3] if records else None
    click.echo(json.dumps({"ok": True, "records": len(records), "head": head}))
