"""Windowed budgets, threshold alerts and settling after the response, through the check pipeline (the gRPC
transport's conversions) with the check's clock injected."""

import pytest
from envoy.data.accesslog.v3.accesslog_pb2 import HTTPAccessLogEntry

from authz_server.delivery import COST_KEY, COST_NAMESPACE, EXT_AUTHZ_NAMESPACE, DeliveryRefunds
from satgate.routes import RouteConfigError, RouteSettings
from satgate.tokens.mint import mint

from .conftest import body_of, check_request, headers_of, status_of

T0 = 1_800_000_000.0  # 2027-01-15T08:00:00Z, an hour boundary


class Hook:
    def __init__(self):
        self.refused, self.crossings = [], []

    def __call__(self, token, cost, remaining):
        self.refused.append((token.token_id, cost))

    def crossed(self, token, crossings, remaining):
        self.crossings += [(c.permille, c.window) for c in crossings]

    def crossed_by(self, tenant, token_id, crossings, buckets, remaining):
        self.crossings += [(c.permille, c.window) for c in crossings]

    async def close(self):
        pass


@pytest.fixture
def clock():
    return [T0 + 1800]


async def test_a_402_from_a_window_says_when_it_resets(make_pipeline, keyring, clock):
    pipeline = make_pipeline(clock=lambda: clock[0])
    token = mint(keyring, "acme", [("budget", "100"), ("budget_window", "2/1h")]).token
    statuses = [status_of(await pipeline.check(check_request(token))) for _ in range(2)]
    refused = await pipeline.check(check_request(token))
    assert statuses == [200, 200] and status_of(refused) == 402
    headers = headers_of(refused)
    assert headers["retry-after"] == "1800"  # seconds to the end of the window
    assert headers["x-satgate-budget-reset"] == "2027-01-15T09:00:00Z"
    assert body_of(refused)["resets_at"] == "2027-01-15T09:00:00Z"
    clock[0] = T0 + 3600  # the next window
    assert status_of(await pipeline.check(check_request(token))) == 200


async def test_a_402_from_a_lifetime_budget_has_nothing_to_wait_for(make_pipeline, keyring, clock):
    pipeline = make_pipeline(clock=lambda: clock[0])
    token = mint(keyring, "acme", [("budget", "1"), ("budget_window", "5/1h")]).token
    assert status_of(await pipeline.check(check_request(token))) == 200
    refused = await pipeline.check(check_request(token))
    assert status_of(refused) == 402
    assert "retry-after" not in headers_of(refused) and "resets_at" not in body_of(refused)


async def test_crossed_thresholds_are_reported_once_per_window(make_pipeline, keyring, clock):
    hook = Hook()
    pipeline = make_pipeline(clock=lambda: clock[0], hook=hook)
    token = mint(keyring, "acme", [("budget_window", "5/1h")]).token
    for _ in range(6):
        await pipeline.check(check_request(token))
    window = int((T0 + 1800) // 3600)
    assert hook.crossings == [(800, window), (1000, window)]
    assert len(hook.refused) == 1
    clock[0] += 3600
    for _ in range(4):
        await pipeline.check(check_request(token))
    assert hook.crossings[2:] == [(800, window + 1)]


def test_settle_is_a_route_setting_with_one_value():
    assert RouteSettings.from_mapping({"settle": "response_header"}).settle == "response_header"
    with pytest.raises(RouteConfigError, match="settle"):
        RouteSettings.from_mapping({"settle": "body"})


def log_entry(metadata, status=200, cost: str | None = None) -> HTTPAccessLogEntry:
    entry = HTTPAccessLogEntry()
    entry.common_properties.metadata.filter_metadata[EXT_AUTHZ_NAMESPACE].CopyFrom(metadata)
    if cost is not None:
        entry.common_properties.metadata.filter_metadata[COST_NAMESPACE].fields[COST_KEY].string_value = cost
    entry.response.response_code.value = status
    entry.request.request_id, entry.request.path = "r-1", "/v1/llm"
    return entry


@pytest.fixture
def settling(make_pipeline, keyring, clock):
    hook = Hook()
    pipeline = make_pipeline(refund_keyring=lambda: keyring, clock=lambda: clock[0], hook=hook)
    delivery = DeliveryRefunds(pipeline._ledger, lambda: keyring, thresholds=(800,), on_crossed=hook.crossed_by)
    return pipeline, delivery, hook


async def remaining(pipeline, token) -> str:
    return headers_of(await pipeline.check(check_request(token, context={"cost": "0"})))["x-satgate-credits-remaining"]


async def test_the_upstreams_cost_settles_each_debit_once(settling, keyring):
    pipeline, delivery, _hook = settling
    token = mint(keyring, "acme", [("budget", "20")]).token
    route = {"cost": "5", "settle": "response_header"}
    cheaper, dearer, unreported, garbled = [await pipeline.check(check_request(token, context=route)) for _ in range(4)]
    assert await remaining(pipeline, token) == "0"  # 4 reservations of 5

    assert await delivery.settle(log_entry(cheaper.dynamic_metadata, cost="2")) == 3  # refunds the difference
    assert await delivery.settle(log_entry(cheaper.dynamic_metadata, cost="2")) == 0  # a duplicate entry
    assert await delivery.settle(log_entry(cheaper.dynamic_metadata, cost="0")) == 0  # nor a different one
    assert await delivery.settle(log_entry(unreported.dynamic_metadata)) == 0  # no header: the reservation stands
    for bad in ("", "-1", "1.5", "0x10", "1e3", " 7", "10000000000000000", "٣"):
        assert await delivery.settle(log_entry(garbled.dynamic_metadata, cost=bad)) == 0, bad
    assert await remaining(pipeline, token) == "3"
    assert await delivery.settle(log_entry(dearer.dynamic_metadata, cost="12")) == -3  # 7 more, 3 could be paid
    assert await remaining(pipeline, token) == "0"


async def test_a_refund_rule_that_applies_wins_over_settling(settling, keyring):
    pipeline, delivery, _hook = settling
    token = mint(keyring, "acme", [("budget", "10")]).token
    route = {"cost": "4", "settle": "response_header", "refund_on": "5xx"}
    failed = await pipeline.check(check_request(token, context=route))
    assert await delivery.settle(log_entry(failed.dynamic_metadata, 503, cost="9")) == 4  # refunded, not settled
    assert await delivery.settle(log_entry(failed.dynamic_metadata, 200, cost="1")) == 0  # nothing left to settle
    assert await remaining(pipeline, token) == "10"


async def test_a_zero_reservation_is_settled_to_the_actual_cost(settling, keyring):
    pipeline, delivery, hook = settling
    token = mint(keyring, "acme", [("budget", "10")]).token
    free = await pipeline.check(check_request(token, context={"cost": "0", "settle": "response_header"}))
    assert "refund" in free.dynamic_metadata.fields
    assert await delivery.settle(log_entry(free.dynamic_metadata, cost="9")) == -9
    assert await remaining(pipeline, token) == "1"
    assert hook.crossings == [(800, None)]  # the excess charged crossed 80 %
