import pytest

from satgate.ledger.url import open_ledger


@pytest.fixture(params=["sqlite"])
async def ledger(request, tmp_path):
    """Every ledger backend must pass the same conformance suite."""
    store = open_ledger(f"sqlite:///{tmp_path}/ledger.db")
    yield store
    await store.close()
