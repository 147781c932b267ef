"""The admin API acting on live traffic through real Envoy, on both transports: a budget topped up through the
Mint lets the very next request through; usage by the registry's labels counts what was served."""

import subprocess
import sys
import time

import httpx
import pytest

from satgate.timefmt import format_utc
from satgate.tokens.mint import mint

pytestmark = pytest.mark.e2e


def cli_mint(stack, *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "satgate_cli", "token", "mint", "--config", str(stack.config_path), *args],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_a_budget_change_applies_to_the_next_request_and_usage_follows_labels(stack, stack_keyring, client):
    label = f"team-{time.monotonic_ns()}"
    token = cli_mint(stack, "--tenant", "acme", "--scope", "api:*", "--budget", "1", "--caveat", f"label={label}")
    headers = {"Authorization": f"Bearer {token}"}
    assert [client.get("/v1/items", headers=headers).status_code for _ in range(2)] == [200, 402]

    admin = mint(stack_keyring, "acme", [("expires", format_utc(time.time() + 600)), ("scope", "satgate:admin")]).token
    mint_api = httpx.Client(
        base_url=f"http://127.0.0.1:{stack.ports.mint}", headers={"Authorization": f"Bearer {admin}"}, timeout=10
    )
    with mint_api:
        (listed,) = [t for t in mint_api.get("/api/admin/tokens").json()["tokens"] if t["label"] == label]
        assert (listed["source"], listed["remaining"]) == ("cli", 0)
        changed = mint_api.post("/api/admin/budgets", json={"id": listed["token_id"], "delta": 2, "reason": "more"})
        assert changed.status_code == 200 and changed.json()["remaining"] == 2, changed.text
        assert [client.get("/v1/items", headers=headers).status_code for _ in range(3)] == [200, 200, 402]

        deadline = time.monotonic() + 10  # authz writes usage in batches, once a second
        while True:
            rows = mint_api.get("/api/admin/usage", params={"by": "label", "since": "1h"}).json()["rows"]
            mine = next((r for r in rows if r["key"] == label), None)
            if mine is not None and mine["requests"] == 5:
                break
            assert time.monotonic() < deadline, rows
            time.sleep(0.2)
        assert (mine["allowed"], mine["denied"], mine["credits"]) == (3, 2, 3)
