"""Schema versions: the migrations build exactly the tables the code reads, a shared database behind this
SatGate's head is refused with the fix, and a mint.db from before migrations is adopted as it is."""

import sqlite3

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from satgate.control_plane.engine import create_engine
from satgate.control_plane.migrate import SchemaOutOfDate, head_revision
from satgate.control_plane.schema import metadata
from satgate.control_plane.store import ControlPlaneStore
from tests.control_plane.conftest import upgraded


async def test_the_migrations_build_exactly_the_schema_the_code_uses(control_plane_url):
    store = await ControlPlaneStore.open(control_plane_url)
    await store.close()
    engine = create_engine(control_plane_url)
    async with engine.connect() as connection:
        differences = await connection.run_sync(lambda c: compare_metadata(MigrationContext.configure(c), metadata))
    await engine.dispose()
    assert differences == []


async def test_a_shared_database_not_yet_upgraded_is_refused_with_the_fix(postgres_url):
    with pytest.raises(SchemaOutOfDate) as refused:
        await ControlPlaneStore.open(postgres_url)
    message = str(refused.value)
    assert "revision none" in message and head_revision() in message
    assert "satgate db upgrade" in message
    await upgraded(postgres_url)
    store = await ControlPlaneStore.open(postgres_url)
    assert await store.schema_revision() == head_revision()
    await store.close()


async def test_a_database_from_a_newer_satgate_is_refused(postgres_url, postgres_server):
    await upgraded(postgres_url)
    database = postgres_url.rsplit("/", 1)[1]
    postgres_server.psql("UPDATE alembic_version SET version_num = 'f00dfeed'", database)
    with pytest.raises(SchemaOutOfDate, match="newer SatGate"):
        await ControlPlaneStore.open(postgres_url)


async def test_the_password_never_appears_in_the_refusal(postgres_server):
    url = postgres_server.new_database().replace("satgate@", "satgate:hunter2@")
    with pytest.raises(SchemaOutOfDate) as refused:
        await ControlPlaneStore.open(url)
    assert "hunter2" not in str(refused.value)


async def test_a_mint_db_from_before_migrations_is_adopted_with_its_records(tmp_path):
    path = tmp_path / "mint.db"
    with sqlite3.connect(path) as db:  # the schema satgate/delegations.py created
        db.executescript(
            """
            CREATE TABLE delegations (
                tenant TEXT NOT NULL, delegation_id TEXT NOT NULL, token_id TEXT NOT NULL,
                parent_delegation_id TEXT, created_at REAL NOT NULL, actor TEXT NOT NULL,
                label TEXT, budget_credits INTEGER, scopes TEXT, expires_at TEXT NOT NULL,
                PRIMARY KEY (tenant, delegation_id)) WITHOUT ROWID;
            CREATE INDEX delegations_by_token ON delegations (tenant, token_id);
            CREATE TABLE revoked_policies (
                name TEXT PRIMARY KEY, tenant TEXT NOT NULL, revoked_at REAL NOT NULL, reason TEXT NOT NULL)
                WITHOUT ROWID;
            CREATE TABLE used_signatures (digest BLOB PRIMARY KEY, fresh_until REAL NOT NULL) WITHOUT ROWID;
            INSERT INTO delegations VALUES ('acme', 'd1', 't1', NULL, 1.0, 't1', NULL, 5, NULL, '2030-01-01T00:00:00Z');
            INSERT INTO revoked_policies VALUES ('ci', 'acme', 1.0, 'leaked');
            """
        )
    store = await ControlPlaneStore.open(f"sqlite:///{path}")
    assert [r.delegation_id for r in await store.subtree("acme", "d1")] == ["d1"]
    assert await store.is_policy_revoked("acme", "ci")  # carried to policy_revocations, now per tenant
    assert await store.schema_revision() == head_revision()
    await store.close()


async def test_a_new_sqlite_file_is_private(tmp_path):
    store = await ControlPlaneStore.open(f"sqlite:///{tmp_path}/state/control-plane.db")
    await store.close()
    assert (tmp_path / "state" / "control-plane.db").stat().st_mode & 0o077 == 0
