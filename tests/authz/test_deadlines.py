"""The pipeline spends nothing for an answer that cannot arrive: a check past its deadline, a check whose caller went
away while the ledger worked (Envoy timed out), an answer that came too late — each is refunded, exactly."""

import asyncio
import time

from satgate.tokens.mint import mint
from tests.ledgers import hold_write_lock

from .conftest import body_of, check_request, status_of


class SlowLedger:
    """The real ledger, with a pause before (or after) each debit: a store that is slow to answer."""

    def __init__(self, ledger, before: float = 0.0, after: float = 0.0) -> None:
        self._ledger, self.before, self.after = ledger, before, after

    async def debit(self, request):
        await asyncio.sleep(self.before)
        result = await self._ledger.debit(request)
        await asyncio.sleep(self.after)
        return result

    def __getattr__(self, name):
        return getattr(self._ledger, name)


async def remaining(pipeline, keyring, token) -> int:
    from satgate.tokens.verify import TokenVerifier

    verified = TokenVerifier(keyring).verify(token)
    return await pipeline._ledger.remaining(verified.tenant, verified.buckets)


async def test_a_check_past_its_deadline_is_503_and_spends_nothing(pipeline, keyring):
    token = mint(keyring, "acme", [("budget", "5")]).token
    late = await pipeline.check(check_request(token), deadline=time.time() + 0.05)  # within the margin
    assert (status_of(late), body_of(late)["error"]) == (503, "authz_unavailable")
    assert await remaining(pipeline, keyring, token) == 5
    in_time = await pipeline.check(check_request(token), deadline=time.time() + 2)
    assert status_of(in_time) == 200


async def test_a_caller_gone_while_the_ledger_waited_for_the_lock_is_refunded(pipeline, keyring, tmp_path):
    token = mint(keyring, "acme", [("budget", "5")]).token
    assert status_of(await pipeline.check(check_request(token))) == 200  # opens the ledger; 4 left
    holder = hold_write_lock(pipeline._ledger.path, 0.4)  # another process writes: the debit waits in its thread
    check = asyncio.create_task(pipeline.check(check_request(token, context={"cost": "2"}), deadline=time.time() + 5))
    await asyncio.sleep(0.1)
    check.cancel()  # what grpc.aio does when Envoy gives up on the stream
    await asyncio.to_thread(holder.wait)
    await asyncio.sleep(0.3)  # the writer commits once the lock is free; the ledger refunds it
    assert await remaining(pipeline, keyring, token) == 4


async def test_an_answer_after_the_deadline_is_refunded(pipeline, keyring):
    slow = SlowLedger(pipeline._ledger, after=0.3)
    pipeline._ledger = slow
    token = mint(keyring, "acme", [("budget", "5")]).token
    response = await pipeline.check(check_request(token, context={"cost": "2"}), deadline=time.time() + 0.25)
    assert status_of(response) == 503
    await asyncio.sleep(0.1)
    assert await remaining(pipeline, keyring, token) == 5


async def test_a_cancelled_retry_does_not_refund_what_the_first_request_paid(pipeline, keyring):
    token = mint(keyring, "acme", [("budget", "5")]).token
    assert status_of(await pipeline.check(check_request(token, request_id="R"))) == 200
    holder = hold_write_lock(pipeline._ledger.path, 0.4)
    retry = asyncio.create_task(pipeline.check(check_request(token, request_id="R"), deadline=time.time() + 5))
    await asyncio.sleep(0.1)
    retry.cancel()
    await asyncio.to_thread(holder.wait)
    await asyncio.sleep(0.3)
    assert await remaining(pipeline, keyring, token) == 4  # the retry was answered from the record: no refund
