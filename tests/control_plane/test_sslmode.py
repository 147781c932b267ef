"""`sslmode` in a PostgreSQL control-plane URL is libpq's and is honoured: `require` refuses a server that does not
speak TLS (the tests' private PostgreSQL runs without it), `disable` and `prefer` connect in the clear to it."""

import pytest
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from satgate.control_plane.engine import create_engine, failure_reason


async def select_one(url: str) -> int:
    engine = create_engine(url)
    try:
        async with engine.connect() as db:
            return (await db.execute(text("SELECT 1"))).scalar_one()
    finally:
        await engine.dispose()


@pytest.mark.parametrize("mode", ["disable", "prefer"])
async def test_a_server_without_tls_is_reached_when_the_mode_allows_it(postgres_url, mode):
    assert await select_one(f"{postgres_url}?sslmode={mode}") == 1


@pytest.mark.parametrize(("mode", "reason"), [("require", "ssl"), ("verify-full", "certificate")])
async def test_a_mode_that_requires_tls_never_connects_in_the_clear(postgres_url, mode, reason, tmp_path, monkeypatch):
    """require: the server declines TLS, so no connection; verify-full: no CA to verify it with, so none either."""
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.postgresql/root.crt, whatever the machine has
    monkeypatch.delenv("PGSSLROOTCERT", raising=False)
    with pytest.raises((SQLAlchemyError, OSError, ConnectionError)) as refused:
        await select_one(f"{postgres_url}?sslmode={mode}")
    assert reason in failure_reason(refused.value).lower()
