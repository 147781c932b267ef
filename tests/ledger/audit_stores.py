"""Every audit store, opened as the servers open them: SQLite, the Redis Stream, the control plane's database."""

from satgate.audit import open_audit_log
from satgate.audit.sql import SqlAuditLog
from satgate.control_plane.store import ControlPlaneStore
from tests.control_plane.conftest import upgraded


async def control_plane(kind: str, request, tmp_path) -> str:
    if kind == "sql-sqlite":
        url = f"sqlite:///{tmp_path}/control-plane.db"
        await (await ControlPlaneStore.open(url)).close()  # created and migrated, as the Mint does
        return url
    return await upgraded(request.getfixturevalue("postgres_url"))


async def opened(kind: str, request, tmp_path):
    """(open another writer, the URL the SQL ones use)"""
    if kind == "sqlite":
        return lambda: open_audit_log(f"sqlite:///{tmp_path}/ledger.db", tmp_path / "audit.db"), None
    if kind == "redis":
        server = request.getfixturevalue("redis_server")
        server.cli("flushall")
        return lambda: open_audit_log(server.url, tmp_path / "unused.db"), None
    url = await control_plane(kind, request, tmp_path)
    return lambda: SqlAuditLog.from_url(url), url  # what open_audit_log picks for a PostgreSQL control plane


KINDS = ["sqlite", "redis", "sql-sqlite", "sql-postgresql"]
