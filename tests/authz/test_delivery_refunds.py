"""Pay for delivered requests only: an allow on a refund_on route carries a signed refund claim in its access-log
metadata; the access-log entry of a request the upstream answered 5xx, or never answered, refunds the debit once —
never a delivered one, never twice, never from a claim we did not sign."""

import pytest
from envoy.data.accesslog.v3.accesslog_pb2 import HTTPAccessLogEntry

from authz_server.delivery import EXT_AUTHZ_NAMESPACE, DeliveryRefunds
from satgate.keyring import Keyring
from satgate.routes import RouteConfigError, RouteSettings
from satgate.tokens.mint import mint

from .conftest import check_request, headers_of, status_of


def entry(metadata, status: int = 200, *, request_id: str = "r-1", **flags: bool) -> HTTPAccessLogEntry:
    log = HTTPAccessLogEntry()
    log.common_properties.metadata.filter_metadata[EXT_AUTHZ_NAMESPACE].CopyFrom(metadata)
    if status:
        log.response.response_code.value = status
    for flag, value in flags.items():
        setattr(log.common_properties.response_flags, flag, value)
    log.request.request_id, log.request.path = request_id, "/v1/items"
    return log


@pytest.fixture
def refundable(make_pipeline, keyring):
    pipeline = make_pipeline(refund_keyring=lambda: keyring)
    return pipeline, DeliveryRefunds(pipeline._ledger, lambda: keyring)


async def remaining(pipeline, token) -> str:
    return headers_of(await pipeline.check(check_request(token, context={"cost": "0"})))["x-satgate-credits-remaining"]


async def test_a_5xx_refunds_once_and_a_delivered_request_stays_charged(refundable, keyring):
    pipeline, delivery = refundable
    token = mint(keyring, "acme", [("budget", "10")]).token
    route = {"cost": "3", "refund_on": "5xx,reset"}
    allowed = await pipeline.check(check_request(token, context=route))
    served = await pipeline.check(check_request(token, context=route))
    assert status_of(allowed) == status_of(served) == 200 and await remaining(pipeline, token) == "4"
    assert "refund" in allowed.dynamic_metadata.fields

    assert await delivery.settle(entry(allowed.dynamic_metadata, 503)) == 3
    assert await delivery.settle(entry(allowed.dynamic_metadata, 503)) == 0  # a duplicate entry
    assert await delivery.settle(entry(served.dynamic_metadata, 200)) == 0  # delivered: charged
    assert await delivery.settle(entry(served.dynamic_metadata, 404)) == 0  # the upstream's answer, delivered
    assert await remaining(pipeline, token) == "7"


async def test_reset_means_the_upstream_never_answered(refundable, keyring):
    pipeline, delivery = refundable
    token = mint(keyring, "acme", [("budget", "10")]).token
    reset_only = await pipeline.check(check_request(token, context={"cost": "2", "refund_on": "reset"}))
    five_only = await pipeline.check(check_request(token, context={"cost": "2", "refund_on": "5xx"}))
    assert await delivery.settle(entry(reset_only.dynamic_metadata, 500)) == 0  # a 5xx, not refundable here
    assert await delivery.settle(entry(five_only.dynamic_metadata, 0, upstream_remote_reset=True)) == 0
    failed = entry(reset_only.dynamic_metadata, 503, upstream_connection_failure=True)
    assert await delivery.settle(failed) == 2
    interim = entry(five_only.dynamic_metadata, 503)
    interim.common_properties.intermediate_log_entry = True  # a long stream's periodic entry: not over yet
    assert await delivery.settle(interim) == 0
    assert await remaining(pipeline, token) == "8"


async def test_claims_are_ours_alone(refundable, keyring):
    pipeline, delivery = refundable
    token = mint(keyring, "acme", [("budget", "10")]).token
    allowed = await pipeline.check(check_request(token, context={"cost": "4", "refund_on": "5xx"}))
    claim = allowed.dynamic_metadata.fields["refund"].string_value
    forged = type(allowed.dynamic_metadata)()
    forged.CopyFrom(allowed.dynamic_metadata)
    assert "~acme~" in claim
    forged.fields["refund"].string_value = claim.replace("~acme~", "~globex~", 1)  # someone else's debit
    assert await delivery.settle(entry(forged, 503)) == 0
    forged.fields["refund"].string_value = claim[:-1] + ("0" if claim[-1] != "0" else "1")  # the debit's own fields
    assert await delivery.settle(entry(forged, 503)) == 0  # refused by the signature alone
    other = DeliveryRefunds(pipeline._ledger, lambda: Keyring.generate("k1"))  # another deployment's keyring
    assert await other.settle(entry(allowed.dynamic_metadata, 503)) == 0
    plain = await pipeline.check(check_request(token, context={"cost": "1"}))  # no refund_on: no claim
    assert "refund" not in plain.dynamic_metadata.fields
    assert await delivery.settle(entry(plain.dynamic_metadata, 503)) == 0
    assert await remaining(pipeline, token) == "5"


def test_refund_on_takes_5xx_and_reset_only():
    assert RouteSettings.from_mapping({"refund_on": "reset, 5xx"}).refund_on == ("5xx", "reset")
    with pytest.raises(RouteConfigError, match="refund_on"):
        RouteSettings.from_mapping({"refund_on": "4xx"})


async def test_a_refund_is_audited_and_shows_in_usage_as_negative_credits(make_pipeline, keyring, tmp_path):
    from satgate.audit.sqlite import SqliteAuditLog
    from satgate.usage import SqliteUsageSink, UsageRecorder

    pipeline = make_pipeline(refund_keyring=lambda: keyring)
    sink = SqliteUsageSink(tmp_path / "usage.db")
    usage, audit = UsageRecorder(sink, retention_days=1), SqliteAuditLog(tmp_path / "audit.db")
    delivery = DeliveryRefunds(pipeline._ledger, lambda: keyring, audit=audit, usage=usage)
    minted = mint(keyring, "acme", [("budget", "10")])
    allowed = await pipeline.check(check_request(minted.token, context={"cost": "3", "refund_on": "5xx"}))
    log = entry(allowed.dynamic_metadata, 502, request_id="req-7")
    log.request.request_method = 3  # POST
    assert await delivery.settle(log) == 3
    await usage.flush()
    (row,) = await sink.report("token", 0)
    assert (row["key"], row["credits"], row["denied"]) == (minted.identifier.token_id, -3, 1)
    (record,) = [r for _seq, r, _prev, _hash in await audit.records() if r["type"] == "debit_refunded"]
    assert record["details"] == {"credits": 3, "reason": "upstream_5xx", "status": 502, "request_id": "req-7"}
    await usage.close()
    await audit.close()
