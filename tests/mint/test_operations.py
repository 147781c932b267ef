"""Which rule issues, disabling and hot reload, rate limits, audit, metrics, verify, and gRPC."""

import asyncio
import json
import time

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from satgate.tokens.mint import attenuate
from satgate_api.mint.v1 import mint_pb2, mint_pb2_grpc

from .conftest import oidc_policy, policies


async def test_first_matching_rule_wins_in_file_order(idp, start_mint):
    mint = await start_mint(
        policies(
            oidc_policy(idp.issuer, name="narrow", match='sub: "agent-vip"', issue="budget_credits: 100"),
            oidc_policy(idp.issuer, name="broad", match='sub: "agent-*"', issue="budget_credits: 5"),
        )
    )
    assert (await mint.exchange(idp.token("agent-vip", "satgate")))[1]["policy"] == "narrow"
    assert (await mint.exchange(idp.token("agent-2", "satgate")))[1]["policy"] == "broad"
    status, body = await mint.exchange(idp.token("intruder", "satgate"))
    assert (status, body["error"]) == (403, "no_matching_rule")


async def test_policies_choose_by_audience(idp, start_mint):
    mint = await start_mint(
        policies(
            oidc_policy(idp.issuer, name="for-a", audience="service-a"),
            oidc_policy(idp.issuer, name="for-b", audience="service-b"),
        )
    )
    assert (await mint.exchange(idp.token("agent-1", "service-b")))[1]["policy"] == "for-b"


async def test_disabled_policy_is_403_and_hot_reload_applies_at_once(idp, start_mint):
    mint = await start_mint(policies(oidc_policy(idp.issuer)))
    issued = (await mint.exchange(idp.token("agent-1", "satgate")))[1]
    mint.policies_path.write_text(
        mint.policies_path.read_text().replace("tenant: acme", "tenant: acme\n    disabled: true")
    )
    for _ in range(50):  # reload interval is 0.1 s in these tests
        status, body = await mint.exchange(idp.token("agent-1", "satgate"))
        if status == 403:
            break
        await asyncio.sleep(0.05)
    assert (status, body["error"]) == (403, "policy_disabled")
    # Tokens already issued live on.
    verify = await mint.client.post("/api/mint/verify", headers={"Authorization": f"Bearer {issued['token']}"})
    assert (await verify.json())["valid"] is True
    (reload,) = [r for r in await mint.audit() if r["type"] == "policy_change"]
    assert (reload["tenant"], reload["details"]["changed"], reload["details"]["disabled"]) == (
        "acme",  # under the tenant it changed: its export and console show it
        ["agents"],
        ["agents"],
    )


async def test_a_bad_edit_keeps_the_last_good_policies(idp, start_mint):
    mint = await start_mint(policies(oidc_policy(idp.issuer)))
    mint.policies_path.write_text("policies: [ {broken")
    await asyncio.sleep(0.4)
    assert (await mint.exchange(idp.token("agent-1", "satgate")))[0] == 200


async def test_rate_limit_per_identity(idp, start_mint):
    mint = await start_mint(policies(oidc_policy(idp.issuer)), rate_limit_per_minute=3)
    statuses = [(await mint.exchange(idp.token("agent-1", "satgate")))[0] for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    response = await mint.client.post("/api/mint/exchange", json={"credentials": idp.token("agent-1", "satgate")})
    assert 19 <= int(response.headers["Retry-After"]) <= 20  # 3 a minute: the next one in 20 s, not a guess
    assert "retry in" in (await response.json())["message"]
    assert (await mint.exchange(idp.token("agent-2", "satgate")))[0] == 200  # another identity


async def test_retry_after_is_when_the_bucket_next_allows_one(idp, start_mint):
    mint = await start_mint(policies(oidc_policy(idp.issuer)), rate_limit_per_minute=60)
    # The limiter's clock stands still: on a loaded machine 60 exchanges can take over a second, and the bucket
    # would refill while they run (this asserts the arithmetic, not how fast the machine is).
    frozen = time.monotonic()
    mint.service._rate.clock = lambda: frozen
    for _ in range(60):
        await mint.exchange(idp.token("agent-1", "satgate"))
    response = await mint.client.post("/api/mint/exchange", json={"credentials": idp.token("agent-1", "satgate")})
    assert (response.status, response.headers["Retry-After"]) == (429, "1")  # refills one a second


def pod_token(idp, uid: str) -> str:
    k8s = {"namespace": "agents", "serviceaccount": {"name": "worker"}, "pod": {"name": f"worker-{uid}", "uid": uid}}
    return idp.token("system:serviceaccount:agents:worker", "satgate", **{"kubernetes.io": k8s})


async def test_pods_of_one_service_account_starting_together_are_limited_each_on_their_own(idp, start_mint):
    """100 replicas of one Deployment share a service account: the limit is per pod, not per account."""
    mint = await start_mint(
        policies(oidc_policy(idp.issuer, match='sub: "system:serviceaccount:*"')), rate_limit_per_minute=2
    )
    statuses = [(await mint.exchange(pod_token(idp, f"uid-{i}")))[0] for i in range(100)]
    assert statuses == [200] * 100
    same_pod = [(await mint.exchange(pod_token(idp, "uid-0")))[0] for _ in range(2)]
    assert same_pod == [200, 429]  # one pod restarting in a loop is still limited


async def test_ci_runs_are_limited_per_run(idp, start_mint):
    mint = await start_mint(policies(oidc_policy(idp.issuer, match='repository: "acme/*"')), rate_limit_per_minute=1)
    runs = [idp.token("repo:acme/app", "satgate", repository="acme/app", run_id=i, run_attempt=1) for i in range(5)]
    assert [(await mint.exchange(t))[0] for t in runs] == [200] * 5
    assert (await mint.exchange(runs[0]))[0] == 429


async def test_an_untrusted_issuer_is_named_in_the_refusal(idp, other_idp, start_mint):
    mint = await start_mint(policies(oidc_policy(idp.issuer)))
    status, body = await mint.exchange(other_idp.token("agent-1", "satgate"))
    assert status == 401
    assert repr(other_idp.issuer) in body["message"] and "must match exactly" in body["message"]


async def test_credentials_are_trimmed_in_the_body_as_in_the_header(idp, start_mint):
    mint = await start_mint(policies(oidc_policy(idp.issuer)))
    jwt = idp.token("agent-1", "satgate") + "\n"  # as read from a file
    assert (await mint.exchange(jwt))[0] == 200
    padded = f"Bearer {jwt.strip()} \t"  # a header cannot carry the newline; its other whitespace is trimmed too
    response = await mint.client.post("/api/mint/exchange", headers={"Authorization": padded})
    assert response.status == 200


async def test_every_exchange_and_denial_is_audited_in_a_verifiable_chain(idp, other_idp, start_mint):
    mint = await start_mint(policies(oidc_policy(idp.issuer)))
    _, issued = await mint.exchange(idp.token("agent-1", "satgate"))
    await mint.exchange(idp.token("intruder", "satgate"))
    await mint.exchange(other_idp.token("agent-1", "satgate"))
    await mint.service.refusals.flush()  # refusals before any identity verified are audited per interval
    records = await mint.audit()
    assert [(r["type"], r["details"].get("reason")) for r in records] == [
        ("exchange", None),
        ("exchange_denied", "no_matching_rule"),
        ("exchange_denied", "invalid_identity"),
    ]
    assert (records[2]["details"]["count"], records[2]["details"]["source"]) == (1, "127.0.0.1")
    assert records[0]["token_id"] == issued["token_id"] and records[0]["policy"] == "agents"
    assert all(issued["token"] not in str(r) for r in records)
    assert await mint.service._audit.verify() is None
    (seq,) = [s for s, r, _p, _h in await mint.service._audit.records() if r["actor"] == "intruder"]
    mint.service._audit._db.execute(
        "UPDATE audit SET record = replace(record, 'intruder', 'someone') WHERE seq = ?", (seq,)
    )
    assert await mint.service._audit.verify() == seq


async def test_metrics(idp, start_mint):
    mint = await start_mint(policies(oidc_policy(idp.issuer)))
    await mint.exchange(idp.token("agent-1", "satgate"))
    await mint.exchange(idp.token("nobody", "satgate"))
    text = await (await mint.client.get("/metrics")).text()
    assert 'satgate_mint_exchanges_total{outcome="issued",provider="jwt"} 1.0' in text
    assert 'satgate_mint_exchanges_total{outcome="no_matching_rule",provider="jwt"} 1.0' in text
    await mint.exchange("junk")
    # one label set on every Mint metric: the credential kind the caller presented
    from prometheus_client.parser import text_string_to_metric_families

    text = await (await mint.client.get("/metrics")).text()
    providers = {
        sample.labels["provider"]
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if "provider" in sample.labels
    }
    assert providers == {"jwt"}
    assert 'satgate_mint_jwks_fetches_total{result="ok"} 1.0' in text


async def test_verify(idp, start_mint):
    mint = await start_mint(policies(oidc_policy(idp.issuer, issue="budget_credits: 9")))
    _, issued = await mint.exchange(idp.token("agent-1", "satgate"))
    child = attenuate(issued["token"], [("budget", "4")])

    async def verify(token):
        return await (await mint.client.post("/api/mint/verify", headers={"Authorization": f"Bearer {token}"})).json()

    body = await verify(child)
    assert (body["valid"], body["token_id"], body["remaining"]) == (True, issued["token_id"], 4)
    assert body["caveats"][-1] == "budget = 4"
    assert (await verify(child[:-3] + "AAA"))["valid"] is False
    await mint.service._ledger.revoke("acme", issued["token_id"])
    assert await verify(child) == {"valid": False, "error": "revoked"}
    assert (await mint.client.post("/api/mint/verify")).status == 400


async def test_grpc_front_end_serves_the_same_operations(idp, start_mint):
    mint = await start_mint(policies(oidc_policy(idp.issuer, issue="budget_credits: 3")))
    async with grpc.aio.insecure_channel(mint.grpc_target) as channel:
        stub = mint_pb2_grpc.MintStub(channel)
        issued = await stub.Exchange(mint_pb2.ExchangeRequest(credentials=idp.token("agent-1", "satgate")))
        assert (issued.tenant, issued.policy, issued.budget_credits) == ("acme", "agents", 3)
        verified = await stub.Verify(mint_pb2.VerifyRequest(token=issued.token))
        assert (verified.valid, verified.token_id, verified.remaining) == (True, issued.token_id, 3)
        with pytest.raises(grpc.aio.AioRpcError) as denied:
            await stub.Exchange(mint_pb2.ExchangeRequest(credentials=idp.token("intruder", "satgate")))
        assert denied.value.code() == grpc.StatusCode.PERMISSION_DENIED
        assert "no_matching_rule" in denied.value.details()
        with pytest.raises(grpc.aio.AioRpcError) as bad:
            await stub.Exchange(mint_pb2.ExchangeRequest(credentials="junk"))
        assert bad.value.code() == grpc.StatusCode.UNAUTHENTICATED
        with pytest.raises(grpc.aio.AioRpcError) as empty:
            await stub.Exchange(mint_pb2.ExchangeRequest())
        assert empty.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        health = await health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service="satgate_api.mint.v1.Mint")
        )
        assert health.status == health_pb2.HealthCheckResponse.SERVING


async def test_kubernetes_service_account_tokens(idp, start_mint):
    mint = await start_mint(
        policies(
            oidc_policy(
                idp.issuer,
                provider="kubernetes",
                match='"/kubernetes.io/pod/name": "research-*"',
                issue='budget_credits: 9, label_template: "{{ .Claims.sub }}"',
            )
        ).replace(
            "trust_rules:\n      - match:\n",
            "trust_rules:\n      - match:\n          namespace: agents\n          service_account: research-bot\n",
        )
    )

    def sa_token(namespace: str, account: str) -> str:
        return idp.token(
            f"system:serviceaccount:{namespace}:{account}",
            "satgate",
            **{
                "kubernetes.io": {
                    "namespace": namespace,
                    "serviceaccount": {"name": account, "uid": "5f1c"},
                    "pod": {"name": f"research-{account}", "uid": "a1b2"},
                }
            },
        )

    status, body = await mint.exchange(sa_token("agents", "research-bot"))
    assert status == 200, body
    assert "label = system:serviceaccount:agents:research-bot" in body["caveats"]
    assert (await mint.exchange(sa_token("default", "research-bot")))[0] == 403
    assert (await mint.exchange(sa_token("agents", "other-bot")))[0] == 403


async def test_each_start_records_its_settings_as_a_digest_without_secrets(idp, start_mint, tmp_path, monkeypatch):
    monkeypatch.setenv("HOOK_SECRET", "s3cret-webhook-key")
    mint = await start_mint(
        policies(oidc_policy(idp.issuer)),
        webhooks=[{"url": "http://127.0.0.1:9/hook", "secret_env": "HOOK_SECRET"}],
    )
    (record,) = await mint.start_records()
    details = record["details"]
    assert len(details["config_sha256"]) == 64 and details["tls"] is False
    assert "s3cret-webhook-key" not in json.dumps(record)
    again = await start_mint(policies(oidc_policy(idp.issuer)), rate_limit_per_minute=5)  # another setting
    assert (await again.start_records())[-1]["details"]["config_sha256"] != details["config_sha256"]
