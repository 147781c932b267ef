"""The `satgate` command: one module per command group (satgate_cli/<group>.py), assembled here."""

from __future__ import annotations

import click

from satgate_cli import admin, audit, db, dev, keys, ledger, servers, tokens, usage


@click.group()
@click.version_option(package_name="satgate-envoy")
def cli() -> None:
    """SatGate for Envoy: economic access control with macaroon tokens."""


for command in (
    servers.authz,
    servers.mint,
    servers.health,
    keys.keys,
    ledger.ledger,
    db.db,
    tokens.token,
    usage.usage,
    audit.audit,
    admin.admin,
    dev.up,
    dev.demo_jwt,
    dev.demo_upstream,
    dev.demo_idp,
):
    cli.add_command(command)


def main(argv: list[str] | None = None) -> None:
    cli.main(args=argv, prog_name="satgate")
