"""Usage records from real decisions: counted per token, tenant and attribute; no tokens or queries kept."""

import sqlite3
import time

import pytest

from authz_server.check import CheckSettings
from satgate.routes import RouteTable
from satgate.tokens.mint import mint
from satgate.tokens.verify import TokenVerifier
from satgate.usage import UsageRecorder, UsageStore
from tests.ledgers import fresh_ledger

from .conftest import check_request, grpc_pipeline


@pytest.fixture
async def recorded(tmp_path, keyring):
    store = UsageStore(tmp_path / "usage.db")
    recorder = UsageRecorder(store, retention_days=30)
    ledger = fresh_ledger(f"sqlite:///{tmp_path}/ledger.db")
    pipeline = grpc_pipeline(
        verifier=TokenVerifier(keyring, attribute_keys=["department"]),
        ledger=ledger,
        routes=RouteTable(),
        settings=CheckSettings(attribute_headers=("department",)),
        usage=recorder,
    )
    yield pipeline, recorder, store, tmp_path
    await ledger.close()


async def test_every_decision_is_recorded_and_reported(recorded, keyring):
    pipeline, recorder, store, tmp_path = recorded
    eng = mint(keyring, "acme", [("budget", "3"), ("department", "eng")], attribute_keys=["department"])
    sales = mint(keyring, "acme", [("department", "sales")], attribute_keys=["department"])
    for _ in range(4):  # 3 allowed, then 402
        await pipeline.check(check_request(eng.token, path="/v1/items?secret=hunter2"))
    await pipeline.check(check_request(sales.token, context={"cost": "5"}))
    await pipeline.check(check_request())  # 401, no token
    await recorder.flush()

    by_token = {row["key"]: row for row in store.report("token", time.time() - 60)}
    assert by_token[eng.identifier.token_id] == {
        "key": eng.identifier.token_id,
        "requests": 4,
        "allowed": 3,
        "denied": 1,
        "credits": 3,
    }
    assert by_token[sales.identifier.token_id]["credits"] == 5
    assert by_token[None]["denied"] == 1
    by_department = {row["key"]: row["credits"] for row in store.report("attr:department", time.time() - 60)}
    assert by_department == {"eng": 3, "sales": 5, None: 0}
    assert {row["key"]: row["requests"] for row in store.report("tenant", 0)} == {"acme": 5, None: 1}

    dump = "\n".join(map(str, sqlite3.connect(tmp_path / "usage.db").execute("SELECT * FROM usage")))
    assert "hunter2" not in dump and eng.token not in dump and "/v1/items" in dump


async def test_retention_and_bad_groupings(recorded):
    _pipeline, _recorder, store, _ = recorded
    store.write([(time.time() - 40 * 86400, "acme", "t" * 32, "/old", "GET", 200, 1, "{}")], retain_after=0)
    store.write([(time.time(), "acme", "u" * 32, "/new", "GET", 200, 1, "{}")], retain_after=time.time() - 30 * 86400)
    assert [row["key"] for row in store.report("token", 0)] == ["u" * 32]
    for by in ("route", "attr:x'); DROP TABLE usage; --", "attr:"):
        with pytest.raises(ValueError, match="--by"):
            store.report(by, 0)


async def test_a_broken_usage_store_never_breaks_decisions(recorded, keyring):
    pipeline, recorder, store, _ = recorded
    store.close()  # writes will fail
    assert (await pipeline.check(check_request(mint(keyring, "acme").token))).HasField("ok_response")
    await recorder.flush()
    assert recorder.dropped == 1
