"""Observe mode: the whole decision is made, logged, counted and recorded as in enforce mode, but Envoy is told to
allow; the upstream sees the decision in x-satgate-observed-decision. Debits happen as they would (observe_debit),
or, with observe_debit off, revocation and budget are read and nothing is spent."""

import pytest

from authz_server.metrics import CheckMetrics
from satgate.routes import RouteConfigError, RouteSettings
from satgate.tokens.mint import mint

from .conftest import check_request, headers_of, status_of

OBSERVED = "x-satgate-observed-decision"


def decisions(metrics: CheckMetrics) -> dict[tuple[str, str, str], float]:
    return {
        (s.labels["code"], s.labels["reason"], s.labels["enforced"]): s.value
        for family in metrics.registry.collect()
        if family.name == "satgate_authz_decisions"
        for s in family.samples
        if s.name.endswith("_total")
    }


async def test_an_observed_route_allows_what_it_would_refuse_and_says_so(make_pipeline, keyring):
    metrics = CheckMetrics()
    pipeline = make_pipeline(metrics=metrics)
    observe = {"mode": "observe", "cost": "2", "scope": "api:read"}
    token = mint(keyring, "acme", [("budget", "3"), ("scope", "api:read")]).token
    answers = [await pipeline.check(check_request(token, context=observe)) for _ in range(2)]
    assert [status_of(a) for a in answers] == [200, 200]
    first, second = (headers_of(a) for a in answers)
    assert (first[OBSERVED], first["x-satgate-credits-charged"], first["x-satgate-credits-remaining"]) == (
        "allow",
        "2",
        "1",
    )
    assert (second[OBSERVED], second["x-satgate-credits-charged"]) == ("402 budget_exhausted", "0")
    assert second["x-satgate-token-id"] and "authorization" in answers[1].ok_response.headers_to_remove

    no_scope = mint(keyring, "acme", [("scope", "other:*")]).token
    refused = await pipeline.check(check_request(no_scope, context=observe))
    assert (status_of(refused), headers_of(refused)[OBSERVED]) == (200, "403 insufficient_scope")
    spoofing = check_request(None, context=observe, headers={OBSERVED: "allow", "x-satgate-tenant": "root"})
    anonymous = await pipeline.check(spoofing)
    assert (status_of(anonymous), headers_of(anonymous)) == (200, {OBSERVED: "401 missing_token"})
    assert "x-satgate-tenant" in anonymous.ok_response.headers_to_remove  # spoofed headers still go
    assert OBSERVED not in anonymous.ok_response.headers_to_remove  # it is set, overwriting the client's

    enforced = await pipeline.check(check_request(token, context={"cost": "2"}))  # the same token, enforced
    assert status_of(enforced) == 402 and OBSERVED not in headers_of(enforced)
    assert decisions(metrics) == {
        ("200", "allow", "false"): 1,
        ("402", "budget_exhausted", "false"): 1,
        ("403", "insufficient_scope", "false"): 1,
        ("401", "missing_token", "false"): 1,
        ("402", "budget_exhausted", "true"): 1,
    }


async def test_the_server_wide_mode_observes_every_route_unless_a_route_enforces(make_pipeline, keyring):
    pipeline = make_pipeline(mode="observe")
    token = mint(keyring, "acme", [("budget", "1")]).token
    assert status_of(await pipeline.check(check_request(token))) == 200
    observed = await pipeline.check(check_request(token))
    assert (status_of(observed), headers_of(observed)[OBSERVED]) == (200, "402 budget_exhausted")
    assert status_of(await pipeline.check(check_request(token, context={"mode": "enforce"}))) == 402


async def test_without_observe_debit_nothing_is_spent_but_budget_and_revocation_are_judged(make_pipeline, keyring):
    pipeline = make_pipeline(mode="observe", observe_debit=False)
    minted = mint(keyring, "acme", [("budget", "2")])
    for _ in range(3):
        answer = await pipeline.check(check_request(minted.token, context={"cost": "2"}))
        assert (headers_of(answer)[OBSERVED], headers_of(answer)["x-satgate-credits-charged"]) == ("allow", "0")
    too_dear = await pipeline.check(check_request(minted.token, context={"cost": "3"}))
    assert headers_of(too_dear)[OBSERVED] == "402 budget_exhausted"
    enforced = await pipeline.check(check_request(minted.token, context={"cost": "2", "mode": "enforce"}))
    assert headers_of(enforced)["x-satgate-credits-remaining"] == "0"  # nothing was spent while observing
    await pipeline._ledger.revoke("acme", minted.identifier.token_id)
    revoked = await pipeline.check(check_request(minted.token))
    assert (status_of(revoked), headers_of(revoked)[OBSERVED]) == (200, "401 revoked")


async def test_a_bad_route_setting_is_never_observed(make_pipeline, keyring):
    pipeline = make_pipeline(mode="observe")
    token = mint(keyring, "acme").token
    assert status_of(await pipeline.check(check_request(token, context={"cost": "lots"}))) == 503
    with pytest.raises(RouteConfigError, match="'mode'"):
        RouteSettings.from_mapping({"mode": "audit"})


async def test_observed_decisions_are_recorded_in_usage_as_decided(tmp_path, keyring):
    from authz_server.check import CheckPipeline, CheckSettings
    from authz_server.transports.grpc import GrpcChecks
    from satgate.routes import RouteTable
    from satgate.tokens.verify import TokenVerifier
    from satgate.usage import SqliteUsageSink, UsageRecorder
    from tests.ledgers import fresh_ledger

    sink = SqliteUsageSink(tmp_path / "usage.db")
    recorder = UsageRecorder(sink, retention_days=1)
    ledger = fresh_ledger(f"sqlite:///{tmp_path}/ledger.db")
    pipeline = GrpcChecks(
        CheckPipeline(
            verifier=TokenVerifier(keyring),
            ledger=ledger,
            routes=RouteTable(),
            settings=CheckSettings(mode="observe"),
            usage=recorder,
        )
    )
    minted = mint(keyring, "acme", [("budget", "1")])
    statuses = [status_of(await pipeline.check(check_request(minted.token))) for _ in range(3)]
    assert statuses == [200, 200, 200]
    await recorder.flush()
    (row,) = await sink.report("token", 0)
    assert (row["key"], row["allowed"], row["denied"], row["credits"]) == (minted.identifier.token_id, 1, 2, 1)
    await ledger.close()
    await sink.close()
