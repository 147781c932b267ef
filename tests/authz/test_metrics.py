"""Prometheus metrics: what one scrape tells an operator about the decisions the pipeline made."""

from authz_server.metrics import CheckMetrics
from satgate.tokens.mint import mint

from .conftest import check_request, status_of


def sample(metrics: CheckMetrics, name: str, **labels: str) -> float:
    return metrics.registry.get_sample_value(name, labels) or 0.0


async def test_decisions_by_code_and_reason_latency_and_credits(make_pipeline, keyring):
    metrics = CheckMetrics()
    pipeline = make_pipeline(metrics=metrics)
    acme = mint(keyring, "acme", [("budget", "5")]).token
    globex = mint(keyring, "globex").token
    statuses = [status_of(await pipeline.check(check_request(acme, context={"cost": "2"}))) for _ in range(3)]
    statuses.append(status_of(await pipeline.check(check_request(globex, context={"cost": "7"}))))
    statuses.append(status_of(await pipeline.check(check_request(None))))
    statuses.append(status_of(await pipeline.check(check_request("junk"))))
    assert statuses == [200, 200, 402, 200, 401, 401]

    assert sample(metrics, "satgate_authz_decisions_total", code="200", reason="allow", enforced="true") == 3
    assert sample(metrics, "satgate_authz_decisions_total", code="402", reason="budget_exhausted", enforced="true") == 1
    assert sample(metrics, "satgate_authz_decisions_total", code="401", reason="missing_token", enforced="true") == 1
    assert sample(metrics, "satgate_authz_decisions_total", code="401", reason="malformed_token", enforced="true") == 1
    assert sample(metrics, "satgate_authz_credits_debited_total", tenant="acme") == 4  # the refused 2 are not
    assert sample(metrics, "satgate_authz_credits_debited_total", tenant="globex") == 7
    assert sample(metrics, "satgate_authz_check_seconds_count") == 6
    assert 0 < sample(metrics, "satgate_authz_check_seconds_sum") < 6
    assert sample(metrics, "satgate_authz_ledger_errors_total") == 0


async def test_ledger_outage_is_counted_and_answered_503(make_pipeline, keyring):
    metrics = CheckMetrics()
    pipeline = make_pipeline(metrics=metrics)
    t = mint(keyring, "acme", [("budget", "5")]).token
    await pipeline._ledger.close()  # the store is gone
    assert status_of(await pipeline.check(check_request(t))) == 503
    assert sample(metrics, "satgate_authz_ledger_errors_total") == 1
    unavailable = {"code": "503", "reason": "authz_unavailable", "enforced": "true"}
    assert sample(metrics, "satgate_authz_decisions_total", **unavailable) == 1
    assert sample(metrics, "satgate_authz_credits_debited_total", tenant="acme") == 0


async def test_pipelines_keep_separate_registries(make_pipeline, keyring):
    """Two servers in one process (tests, embedding) must not collide in prometheus' global registry."""
    first, second = CheckMetrics(), CheckMetrics()
    t = mint(keyring, "acme").token
    await make_pipeline(metrics=first).check(check_request(t))
    assert sample(first, "satgate_authz_check_seconds_count") == 1
    assert sample(second, "satgate_authz_check_seconds_count") == 0
