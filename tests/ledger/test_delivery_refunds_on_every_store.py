"""Refunds for undelivered requests on every ledger backend (SQLite, Redis, Redis Cluster): the access-log entry of
a request the upstream answered 5xx gives back exactly what its debit charged, to every bucket of the chain, once."""

from envoy.data.accesslog.v3.accesslog_pb2 import HTTPAccessLogEntry

from authz_server.check import CheckPipeline, CheckSettings
from authz_server.delivery import EXT_AUTHZ_NAMESPACE, DeliveryRefunds
from authz_server.transports.grpc import GrpcChecks
from satgate.routes import RouteTable
from satgate.tokens.delegate import delegate
from satgate.tokens.mint import mint
from satgate.tokens.verify import TokenVerifier
from tests.authz.conftest import check_request


async def test_a_failed_delivery_is_refunded_once_to_every_bucket(ledger, keyring):
    pipeline = GrpcChecks(
        CheckPipeline(
            verifier=TokenVerifier(keyring),
            ledger=ledger,
            routes=RouteTable(),
            settings=CheckSettings(),
            keyring=lambda: keyring,
        )
    )
    parent = mint(keyring, "acme", [("budget", "10")]).token
    child = delegate(parent, ttl_seconds=600, budget_credits=4).token  # two buckets: the parent's and its own
    allowed = await pipeline.check(check_request(child, context={"cost": "3", "refund_on": "5xx"}))
    verified = TokenVerifier(keyring).verify(child)
    assert len(verified.buckets) == 2 and await ledger.remaining("acme", verified.buckets) == 1

    log = HTTPAccessLogEntry()
    log.common_properties.metadata.filter_metadata[EXT_AUTHZ_NAMESPACE].CopyFrom(allowed.dynamic_metadata)
    log.response.response_code.value = 503
    delivery = DeliveryRefunds(ledger, lambda: keyring)
    assert [await delivery.settle(log) for _ in range(3)] == [3, 0, 0]
    assert [await ledger.remaining("acme", (bucket,)) for bucket in verified.buckets] == [10, 4]
