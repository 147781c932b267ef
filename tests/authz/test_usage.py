"""Usage records from real decisions: counted per token, tenant and attribute; no tokens or queries kept — on
the host's own file, and in the control plane (SQLite, and a real PostgreSQL every authz host writes to)."""

import json
import time

import pytest
from sqlalchemy import select, text

from authz_server.check import CheckSettings
from satgate.control_plane.schema import usage
from satgate.control_plane.store import ControlPlaneStore
from satgate.control_plane.usage import SqlUsageSink
from satgate.routes import RouteTable
from satgate.tokens.mint import mint
from satgate.tokens.verify import TokenVerifier
from satgate.usage import SqliteUsageSink, UsageRecorder
from tests.control_plane.conftest import upgraded
from tests.ledgers import fresh_ledger

from .conftest import check_request, grpc_pipeline


async def usage_sink(kind: str, request, tmp_path):
    if kind == "file":
        return SqliteUsageSink(tmp_path / "usage.db")
    if kind == "control-plane-sqlite":
        url = f"sqlite:///{tmp_path}/control-plane.db"
        await (await ControlPlaneStore.open(url)).close()  # created and migrated, as the Mint does
    else:
        url = await upgraded(request.getfixturevalue("postgres_url"))
    return await SqlUsageSink.open(url)


@pytest.fixture(params=["file", "control-plane-sqlite", "control-plane-postgresql"])
async def recorded(request, tmp_path, keyring):
    store = await usage_sink(request.param, request, tmp_path)
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
    await store.close()


async def broken(store) -> None:
    """Writes fail from now on: the file closed, or the shared table gone."""
    if isinstance(store, SqliteUsageSink):
        await store.close()
        return
    async with store._engine.begin() as db:
        await db.execute(text("DROP TABLE usage"))


async def stored_rows(store) -> list:
    """Every stored row as it is, whichever store: what an operator with the database would see."""
    if isinstance(store, SqliteUsageSink):
        return store._store._db.execute("SELECT * FROM usage").fetchall()
    async with store._engine.connect() as db:
        return list(await db.execute(select(usage)))


async def test_every_decision_is_recorded_and_reported(recorded, keyring):
    pipeline, recorder, store, _ = recorded
    eng = mint(keyring, "acme", [("budget", "3"), ("department", "eng")], attribute_keys=["department"])
    sales = mint(keyring, "acme", [("department", "sales")], attribute_keys=["department"])
    for _ in range(4):  # 3 allowed, then 402
        await pipeline.check(check_request(eng.token, path="/v1/items?secret=hunter2"))
    await pipeline.check(check_request(sales.token, context={"cost": "5"}))
    await pipeline.check(check_request())  # 401, no token
    await recorder.flush()

    by_token = {row["key"]: row for row in await store.report("token", time.time() - 60)}
    assert by_token[eng.identifier.token_id] == {
        "key": eng.identifier.token_id,
        "requests": 4,
        "allowed": 3,
        "denied": 1,
        "credits": 3,
    }
    assert by_token[sales.identifier.token_id]["credits"] == 5
    assert by_token[None]["denied"] == 1
    by_department = {row["key"]: row["credits"] for row in await store.report("attr:department", time.time() - 60)}
    assert by_department == {"eng": 3, "sales": 5, None: 0}
    assert {row["key"]: row["requests"] for row in await store.report("tenant", 0)} == {"acme": 5, None: 1}
    assert {row["key"] for row in await store.report("token", 0, tenant="acme")} == {
        eng.identifier.token_id,
        sales.identifier.token_id,
    }  # an admin's view: its tenant's records only (the 401 had no tenant)
    assert await store.report("token", 0, tenant="globex") == []

    dump = "\n".join(map(str, await stored_rows(store)))
    assert "hunter2" not in dump and eng.token not in dump and "/v1/items" in dump


async def test_retention_and_bad_groupings(recorded):
    _pipeline, _recorder, store, _ = recorded
    await store.write([(time.time() - 40 * 86400, "acme", "t" * 32, "/old", "GET", 200, 1, "{}")], retain_after=0)
    await store.write(
        [(time.time(), "acme", "u" * 32, "/new", "GET", 200, 1, "{}")], retain_after=time.time() - 30 * 86400
    )
    assert [row["key"] for row in await store.report("token", 0)] == ["u" * 32]
    assert [row["key"] for row in await store.report("route", 0)] == ["/new"]
    for by in ("routes", "label", "attr:x'); DROP TABLE usage; --", "attr:"):
        with pytest.raises(ValueError, match="--by"):
            await store.report(by, 0)


async def test_a_broken_usage_store_never_breaks_decisions(recorded, keyring):
    pipeline, recorder, store, _ = recorded
    await broken(store)
    assert (await pipeline.check(check_request(mint(keyring, "acme").token))).HasField("ok_response")
    await recorder.flush()
    assert recorder.dropped == 1


async def test_timeline_totals_each_slot_on_every_sink(recorded):
    _pipeline, _recorder, store, _ = recorded
    base = (int(time.time()) // 3600 - 2) * 3600  # two whole hours ago, a slot boundary
    records = [
        (base + 10.7, "acme", "t" * 32, "/a", "GET", 200, 2, "{}"),
        (base + 3599.9, "acme", "t" * 32, "/a", "GET", 402, 0, "{}"),
        (base + 3600.2, "acme", "t" * 32, "/a", "GET", 200, 5, "{}"),
        (base + 3600.4, "globex", "g" * 32, "/a", "GET", 200, 7, "{}"),
    ]
    await store.write(records, retain_after=0)
    assert await store.timeline(base, 3600, tenant="acme") == [
        {"start": base, "requests": 2, "allowed": 1, "denied": 1, "credits": 2},
        {"start": base + 3600, "requests": 1, "allowed": 1, "denied": 0, "credits": 5},
    ]
    assert [row["credits"] for row in await store.timeline(base, 3600)] == [2, 12]


async def test_timeline_by_key_totals_each_slot_and_key_on_every_sink(recorded):
    _pipeline, _recorder, store, _ = recorded
    base = (int(time.time()) // 3600 - 2) * 3600
    ops, ml = json.dumps({"department": "ops"}), json.dumps({"department": "ml"})
    records = [
        (base + 1, "acme", "t" * 32, "/a", "GET", 200, 2, ops),
        (base + 2, "acme", "u" * 32, "/b", "GET", 200, 3, ml),
        (base + 3, "acme", "u" * 32, "/b", "GET", 402, 0, ml),
        (base + 3601, "acme", "t" * 32, "/b", "GET", 200, 5, ops),
        (base + 3602, "acme", "t" * 32, "/a", "GET", 200, 1, "{}"),
        (base + 3603, "globex", "g" * 32, "/a", "GET", 200, 7, ops),
    ]
    await store.write(records, retain_after=0)

    def shaped(rows):
        return sorted((r["start"] - base, r["key"] or "", r["requests"], r["denied"], r["credits"]) for r in rows)

    assert shaped(await store.timeline(base, 3600, tenant="acme", by="route")) == [
        (0, "/a", 1, 0, 2),
        (0, "/b", 2, 1, 3),
        (3600, "/a", 1, 0, 1),
        (3600, "/b", 1, 0, 5),
    ]
    by_department = shaped(await store.timeline(base, 3600, tenant="acme", by="attr:department"))
    assert by_department == [(0, "ml", 2, 1, 3), (0, "ops", 1, 0, 2), (3600, "", 1, 0, 1), (3600, "ops", 1, 0, 5)]
    assert shaped(await store.timeline(base, 3600, tenant="acme", by="token")) == [
        (0, "t" * 32, 1, 0, 2),
        (0, "u" * 32, 2, 1, 3),
        (3600, "t" * 32, 2, 0, 6),
    ]
    with pytest.raises(ValueError, match="--by"):
        await store.timeline(base, 3600, by="attr:x'); --")
