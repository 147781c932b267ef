"""`satgate ledger`: create (mark) the ledger store."""

from __future__ import annotations

import asyncio

import click

from satgate.ledger import LedgerUnavailable
from satgate.ledger.marker import REDIS_SLOTS
from satgate_cli.common import (
    _config,
    config_option,
)


@click.group()
def ledger() -> None:
    """The ledger store (budgets, revocations, debit records)."""


@ledger.command("init")
@config_option
def ledger_init(config_path: str | None) -> None:
    """Mark a new ledger as SatGate's. Servers refuse a store without this marker (a deleted, emptied or
    wrong-path SQLite file, a Redis restarted without its data), since its empty budgets would read as unspent.
    Idempotent: an initialised ledger is left as it is. After a data loss, restore the store first."""
    from satgate.ledger.initialise import init_ledger  # noqa: PLC0415

    config = _config(config_path)
    try:
        where, written = asyncio.run(init_ledger(config.ledger))
    except LedgerUnavailable as exc:
        raise click.ClickException(str(exc)) from None
    if written == 0:
        click.echo(f"ledger at {where} is already initialised")
    elif written in {1, REDIS_SLOTS}:
        click.echo(f"initialised the ledger at {where}")
    else:  # some slots lost their marker: a Redis Cluster master restarted empty, then this was run
        click.echo(f"initialised the ledger at {where}: {written} of {REDIS_SLOTS} hash slots had no marker")
