"""`satgate db`: the control-plane store's schema (Alembic migrations shipped with SatGate)."""

from __future__ import annotations

import asyncio

import click

from satgate_cli.common import (
    _config,
    config_option,
)


@click.group()
def db() -> None:
    """The control-plane store (delegation tree, revoked policies, ...): SQLite or PostgreSQL."""


@db.command("upgrade")
@config_option
def db_upgrade(config_path: str | None) -> None:
    """Bring `control_plane` to this SatGate's schema: every migration in one transaction, so a failure leaves the
    database as it was. Idempotent. Run it once per release before the Mints start (they refuse a database behind
    their schema); an embedded SQLite file is upgraded by the Mint itself."""
    from sqlalchemy.exc import SQLAlchemyError  # noqa: PLC0415 - SQLAlchemy only for db commands

    from satgate.control_plane.engine import create_engine, failure_reason  # noqa: PLC0415
    from satgate.control_plane.migrate import upgrade  # noqa: PLC0415
    from satgate.control_plane.url import redacted  # noqa: PLC0415

    config = _config(config_path)

    async def run() -> tuple[str | None, str]:
        engine = create_engine(config.control_plane)
        try:
            return await upgrade(engine)
        finally:
            await engine.dispose()

    where = redacted(config.control_plane)
    try:
        before, after = asyncio.run(run())
    except (OSError, SQLAlchemyError) as exc:
        raise click.ClickException(f"control_plane: cannot upgrade {where} ({failure_reason(exc)})") from None
    if before == after:
        click.echo(f"control plane at {where} is at schema {after}: nothing to do")
    else:
        click.echo(f"upgraded the control plane at {where}: schema {before or 'none'} -> {after}")


@db.command("status")
@config_option
def db_status(config_path: str | None) -> None:
    """Say which schema revision `control_plane` is at, and whether this SatGate can use it. Exit 1 if not."""
    from sqlalchemy.exc import SQLAlchemyError  # noqa: PLC0415

    from satgate.control_plane.engine import create_engine, failure_reason  # noqa: PLC0415
    from satgate.control_plane.migrate import SchemaOutOfDate, check_schema, head_revision  # noqa: PLC0415
    from satgate.control_plane.url import redacted  # noqa: PLC0415

    config = _config(config_path)
    where = redacted(config.control_plane)

    async def run() -> None:
        engine = create_engine(config.control_plane)
        try:
            await check_schema(engine, where)
        finally:
            await engine.dispose()

    try:
        asyncio.run(run())
    except SchemaOutOfDate as exc:
        raise click.ClickException(str(exc)) from None
    except (OSError, SQLAlchemyError) as exc:
        raise click.ClickException(f"control_plane: cannot reach {where} ({failure_reason(exc)})") from None
    click.echo(f"control plane at {where} is at schema {head_revision()}, this SatGate's")
