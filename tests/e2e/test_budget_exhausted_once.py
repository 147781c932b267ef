"""`budget_exhausted` is audited once per exhausted bucket per 10 minutes — across authz replicas and across the
tokens that share the bucket (attenuated and delegated children) — naming the bucket and the delegation."""

import json
import time

import httpx
import pytest
from click.testing import CliRunner

from satgate.keyring import load_keyring
from satgate.tokens.delegate import delegate
from satgate.tokens.mint import attenuate, mint
from satgate.tokens.verify import TokenVerifier
from satgate_cli import cli
from satgate_dev.devstack import Stack, StackPorts

pytestmark = pytest.mark.e2e


def exhausted_events(stack: Stack) -> list[dict]:
    exported = CliRunner().invoke(cli, ["audit", "export", "--config", str(stack.config_path)]).stdout
    return [r for r in map(json.loads, exported.splitlines()) if r["type"] == "budget_exhausted"]


def test_one_event_per_bucket_across_replicas_and_sharing_tokens(tmp_path):
    with Stack(tmp_path / "stack", StackPorts.free(), authz_replicas=2) as stack:
        keyring = load_keyring(stack.state_dir / "keyring.json")
        parent = mint(keyring, "acme", [("scope", "api:*"), ("budget", "2")]).token
        sibling = attenuate(parent, [("label", "the same bucket, another token string")])
        child = delegate(parent, ttl_seconds=600, budget_credits=100)
        (bucket,) = TokenVerifier(keyring).verify(parent).buckets
        statuses = []
        for _ in range(8):  # a fresh connection each time: Envoy spreads them over both replicas
            for token in (parent, sibling, child.token):
                with httpx.Client(trust_env=False, timeout=10) as http:
                    response = http.get(f"{stack.url}/v1/items", headers={"authorization": f"Bearer {token}"})
                    statuses.append(response.status_code)
        assert statuses.count(200) == 2 and statuses.count(402) == 22
        deadline = time.monotonic() + 10
        while not exhausted_events(stack) and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(1.0)  # any duplicate from another replica or token would have landed by now
        events = exhausted_events(stack)
    assert len(events) == 1, events
    details = events[0]["details"]
    assert (details["bucket_id"], details["bucket_limit"]) == (bucket.bucket_id, 2)
    assert details["delegation_id"] in (None, child.delegation_id)  # whichever token met the empty bucket first
