"""A refund owed outlives a store outage as long as a failover: retried (backoff capped) for RETRY_SECONDS, then
given up. The clock and sleeps are simulated; the ledger refuses like a store with no primary."""

import asyncio

import pytest

from satgate.ledger import DebitRequest, LedgerUnavailable
from satgate.ledger import refunds as refunds_module
from satgate.ledger.refunds import RETRY_SECONDS, pay


class Unreachable:
    """A ledger whose store answers again after `down_for` simulated seconds."""

    def __init__(self, clock: list[float], down_for: float) -> None:
        self.clock, self.down_for, self.calls = clock, down_for, 0

    async def refund(self, request: DebitRequest) -> int:
        self.calls += 1
        if self.clock[0] < self.down_for:
            raise LedgerUnavailable("ledger: redis: MasterNotFoundError: No master found for 'satgate'")
        return request.cost


@pytest.fixture
def clock(monkeypatch):
    now = [0.0]

    async def sleep(seconds: float) -> None:
        now[0] += seconds

    monkeypatch.setattr(refunds_module.time, "monotonic", lambda: now[0])
    monkeypatch.setattr(refunds_module.asyncio, "sleep", sleep)
    return now


REQUEST = DebitRequest("acme", (), (), 3, "debit-1", attempt="a1")


@pytest.mark.parametrize("down_for", [0.0, 6.5, 45.0, RETRY_SECONDS - 1])
def test_a_refund_is_paid_once_the_store_is_back_within_the_retry_time(clock, down_for):
    ledger = Unreachable(clock, down_for)
    assert asyncio.run(pay(ledger, REQUEST, "outcome_unknown")) == 3
    assert clock[0] - down_for <= 5.0  # backoff capped: a store back is seen within 5 s


def test_a_refund_is_given_up_after_the_retry_time(clock):
    ledger = Unreachable(clock, float("inf"))
    assert asyncio.run(pay(ledger, REQUEST, "outcome_unknown")) == 0
    assert RETRY_SECONDS <= clock[0] <= RETRY_SECONDS + 5.0
    assert ledger.calls < 40  # backing off, not spinning
