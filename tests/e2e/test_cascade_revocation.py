"""Revoking a delegation through the admin API denies the whole subtree at Envoy on its next request, while
the parent and siblings keep working — on the SQLite ledger and on Redis."""

import time

import httpx
import pytest

from satgate.keyring import load_keyring
from satgate.timefmt import format_utc
from satgate.tokens.mint import mint
from satgate_dev.demo_idp import DemoIdp
from satgate_dev.devstack import Stack, StackPorts
from satgate_dev.redis_server import RedisServer

pytestmark = pytest.mark.e2e


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


def run_cascade(stack: Stack) -> None:
    mint_url = f"http://127.0.0.1:{stack.ports.mint}"
    with httpx.Client(trust_env=False, timeout=10) as http:
        jwt = DemoIdp.load(stack.idp_state).token("agent-9", "satgate")
        parent = http.post(f"{mint_url}/api/mint/exchange", json={"credentials": jwt}).json()

        def delegate(token: str, label: str) -> dict:
            response = http.post(
                f"{mint_url}/api/mint/delegate", headers=bearer(token), json={"budget_credits": 5, "label": label}
            )
            assert response.status_code == 200, response.text
            return response.json()

        child = delegate(parent["token"], "child")
        sibling = delegate(parent["token"], "sibling")
        grandchild = delegate(child["token"], "grandchild")
        family = {"parent": parent, "child": child, "sibling": sibling, "grandchild": grandchild}
        for member in family.values():
            assert http.get(f"{stack.url}/v1/items", headers=bearer(member["token"])).status_code == 200

        admin = mint(
            load_keyring(stack.state_dir / "keyring.json"),
            "demo",
            [("expires", format_utc(time.time() + 300)), ("scope", "satgate:admin")],
        ).token
        revoked = http.post(f"{mint_url}/api/admin/revoke", headers=bearer(admin), json={"id": child["delegation_id"]})
        assert revoked.status_code == 200

        statuses = {name: http.get(f"{stack.url}/v1/items", headers=bearer(m["token"])) for name, m in family.items()}
        assert {name: r.status_code for name, r in statuses.items()} == {
            "parent": 200,
            "child": 401,
            "sibling": 200,
            "grandchild": 401,
        }
        assert statuses["grandchild"].json()["error"] == "revoked"


def test_cascade_on_sqlite(stack):
    run_cascade(stack)


def test_cascade_on_redis(tmp_path):
    redis = RedisServer(tmp_path / "redis").start()
    try:
        with Stack(tmp_path / "stack", StackPorts.free(), config_overrides={"ledger": redis.url}) as stack:
            run_cascade(stack)
    finally:
        redis.stop()
