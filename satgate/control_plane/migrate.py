"""Schema versions of the control-plane store (Alembic): `satgate db upgrade` brings a database to this
SatGate's head; every server checks at start and refuses a database that is behind (or ahead of) it."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from satgate.control_plane.url import ControlPlaneError

MIGRATIONS = Path(__file__).with_name("migrations")


class SchemaOutOfDate(ControlPlaneError):
    """The database is not at this SatGate's schema head: the message is the one line to show, with the fix."""


def _config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    head = ScriptDirectory.from_config(_config()).get_current_head()
    assert head is not None  # the migrations ship with the code
    return head


def _current(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


async def current_revision(engine: AsyncEngine) -> str | None:
    async with engine.connect() as connection:
        return await connection.run_sync(_current)


async def upgrade(engine: AsyncEngine) -> tuple[str | None, str]:
    """(revision before, revision after): every migration in one transaction, so a failure leaves it as it was
    (PostgreSQL and SQLite both run DDL transactionally)."""

    def run(connection: Connection) -> str | None:
        before = _current(connection)
        command.upgrade(_config(connection), "head")
        return before

    async with engine.begin() as connection:
        before = await connection.run_sync(run)
    return before, head_revision()


async def check_schema(engine: AsyncEngine, where: str) -> None:
    """Raise SchemaOutOfDate unless the database is at this SatGate's head. `where` names it in the message."""
    current, head = await current_revision(engine), head_revision()
    if current == head:
        return
    known = {script.revision for script in ScriptDirectory.from_config(_config()).walk_revisions()}
    if current is not None and current not in known:
        raise SchemaOutOfDate(
            f"control_plane: {where} is at schema revision {current}, written by a newer SatGate than this one "
            f"(head {head}); run that version, or restore a backup"
        )
    raise SchemaOutOfDate(
        f"control_plane: {where} is at schema revision {current or 'none'}, this SatGate needs {head}; "
        "run 'satgate db upgrade' (with the same --config) first"
    )
