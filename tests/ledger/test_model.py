"""The ledger contract as a reference model, and both real stores driven against it (hypothesis stateful
testing, TigerBeetle-style: seeded, every step checked). The model is plain single-threaded Python written from
the SPEC: lifetime and windowed buckets in any chain, revocations, idempotent replays, deadlines, refunds and
settlements, an injected clock. Each step runs on a real SQLite file or a private redis-server, with
interleaved concurrent debits — from this process and, on SQLite, from a second writer process at the same
time — and faults: Redis killed and restarted from its AOF, Redis paused (SIGSTOP) past a debit's deadline, its
client connections dropped, the SQLite write lock held by another process past a deadline, an authz process
killed (SIGKILL) between its debit and its answer and the check retried (as Envoy does) on another. After every
step each bucket's remaining credits in the store equal the model's exactly: nothing overspent, nothing
acknowledged lost, nothing spent twice or for a refused, expired or unanswered debit.

A failure prints hypothesis's reproduction (`@reproduce_failure(...)`, and the seed: rerun with
`pytest tests/ledger/test_model.py --hypothesis-seed=<seed>`). `./dev soak` runs ≥ 100 000 steps."""

from __future__ import annotations

import asyncio
import collections
import json
import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    consumes,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from satgate.ledger import DebitRequest, LedgerUnavailable, Outcome
from satgate_dev.redis_server import RedisServer
from tests.ledgers import fresh_ledger, hold_write_lock

from .model import ALL_BUCKETS, CHAINS, DEADLINE, TENANT, Model, Record, replayed, request
from .model_processes import KILLED_BEFORE_ANSWERING, OTHER_WRITER, bucket_specs

T0 = 1_800_000_000.0  # an hour boundary
SOAK_STEPS = int(os.environ.get("SATGATE_SOAK_STEPS", "0"))
STEPS = 40
COUNTS: collections.Counter[str] = collections.Counter()  # rule → times run (printed by ./dev soak)

REPLAY_WITHIN = 240.0
# A fault takes tenths of a second (a restart, a pause outlasting a deadline, the refund owed after it): in a soak
# run one step in FAULT_EVERY may be one, so 100 000 steps stay within about an hour; a test run allows any.
FAULT_EVERY = 25 if SOAK_STEPS else 1


def sometimes(machine: LedgerMachine) -> bool:
    return machine.steps % FAULT_EVERY == 0  # real seconds: well inside the stores' 10-minute idempotency window


async def _together(*calls):
    return await asyncio.gather(*calls)


def _fields(req: DebitRequest) -> dict:
    return {name: getattr(req, name) for name in DebitRequest.__slots__}


class LedgerMachine(RuleBasedStateMachine):
    """Rules shared by both stores; a subclass opens the store and adds its own faults."""

    records = Bundle("records")

    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.model = Model()
        self.now = T0
        self.steps = 0
        self.ledger = self.open()

    # -------------------------------------------------------------- plumbing
    def open(self):
        raise NotImplementedError

    def run(self, coroutine):
        return self.loop.run_until_complete(coroutine)

    async def debit_call(self, req: DebitRequest):
        """The store's answer, or None when it could not judge the debit in time (unavailable, or past the deadline
        when it got to it): then the client got a refusal, and nothing may stay spent — the ledger refunds a debit
        of unknown outcome once its deadline passed (the invariant waits for that)."""
        try:
            result = await self.ledger.debit(req)
        except LedgerUnavailable:
            COUNTS["unavailable"] += 1
            return None
        if result.outcome is Outcome.EXPIRED:  # judged past its deadline (a store just restarted or resumed)
            COUNTS["expired_in_the_store"] += 1
            return None
        return result

    def retried(self, call):
        """A refund or settlement retried until the store answers: applied once, whatever the first try did.
        Returns the answer and whether an earlier try's fate was unknown."""
        for attempt in range(50):
            try:
                return self.run(call()), attempt > 0
            except LedgerUnavailable:
                COUNTS["unavailable"] += 1
                time.sleep(0.1)
        raise AssertionError("the store never answered")

    def teardown(self) -> None:
        self.run(self.ledger.close())
        self.loop.close()

    # -------------------------------------------------------------- rules
    @rule(target=records, chain=st.sampled_from(sorted(CHAINS)), cost=st.integers(0, 6))
    def debit(self, chain, cost):
        COUNTS["debit"] += 1
        req = request(chain, cost, self.now)
        result = self.run(self.debit_call(req))
        if result is None:
            return None
        expected = self.model.debit(chain, cost, self.now)
        assert result.outcome is expected, (chain, cost, result)
        assert not result.replayed
        if expected is not Outcome.DEBITED:
            return None
        record = Record(req.debit_id, req.attempt, chain, cost, self.now, result.charged)
        self.model.records[record.debit_id] = record
        return record

    @rule(record=records)
    def replay(self, record):
        """A retry with the same debit id, later: answered from the record, never charged again."""
        if record is None or record.debit_id not in self.model.records:
            return
        if time.monotonic() - record.created > REPLAY_WITHIN:
            return
        COUNTS["replay"] += 1
        retry = replayed(record, self.now)
        result = self.run(self.debit_call(DebitRequest(**{**_fields(retry), "attempt": secrets.token_hex(8)})))
        if result is None:
            return
        if self.model.revoked & set(CHAINS[record.chain][0]):
            assert result.outcome is Outcome.REVOKED
        elif not CHAINS[record.chain][1]:  # an unbudgeted token spends nothing: no record to answer from
            assert (result.outcome, result.charged) == (Outcome.DEBITED, record.cost), result
        else:
            assert (result.outcome, result.replayed) == (Outcome.DEBITED, True), result

    def _windows_kept(self, record: Record) -> bool:
        """Whether every window the record charged is one the store must still keep (the current or previous)."""
        return all(
            b.period is None or b.window(self.now) - b.window(record.checked_at) <= 1 for b in CHAINS[record.chain][1]
        )

    @rule(record=consumes(records))
    def refund(self, record):
        """Once, to the windows it was charged in (only windows the store must still keep: current, previous)."""
        if record is None or record.debit_id not in self.model.records:
            return
        if not self._windows_kept(record):
            return
        COUNTS["refund"] += 1
        refund = replayed(record, record.checked_at)
        credits, unknown = self.retried(lambda: self.ledger.refund(refund))
        expected = 0 if record.settled or not CHAINS[record.chain][1] else record.charged
        assert credits == expected or (unknown and credits == 0), (record, credits)
        self.model.give_back(record, expected)
        del self.model.records[record.debit_id]
        assert self.retried(lambda: self.ledger.refund(refund))[0] == 0  # and only once

    @rule(record=records, actual=st.integers(0, 12))
    def settle(self, record, actual):
        if record is None or record.debit_id not in self.model.records or not CHAINS[record.chain][1]:
            return
        if not self._windows_kept(record):
            return
        COUNTS["settle"] += 1
        result, unknown = self.retried(lambda: self.ledger.settle(replayed(record, record.checked_at), actual))
        if record.settled:
            assert not result.settled
            return
        assert result.settled or unknown
        if actual <= record.charged:
            self.model.give_back(record, record.charged - actual)
            charged = actual
        else:
            extra = self.model.payable(record, actual - record.charged)
            self.model.give_back(record, -extra)
            charged = record.charged + extra
        if result.settled:
            assert (result.charged, result.overshoot) == (charged, actual - charged), (record, actual, result)
        record.charged, record.settled = charged, True

    @rule(revocation_id=st.sampled_from(sorted({i for ids, _ in CHAINS.values() for i in ids[1:]} | {"r3" * 16})))
    def revoke(self, revocation_id):
        COUNTS["revoke"] += 1
        self.run(self.ledger.revoke(TENANT, revocation_id))
        self.model.revoked.add(revocation_id)

    @rule(chain=st.sampled_from(sorted(CHAINS)), cost=st.integers(1, 6))
    def past_its_deadline(self, chain, cost):
        COUNTS["past_its_deadline"] += 1
        try:
            result = self.run(self.ledger.debit(request(chain, cost, self.now, deadline=time.time() - 0.001)))
        except LedgerUnavailable:
            return
        assert result.outcome is Outcome.EXPIRED and result.charged == 0, result

    @rule(chain=st.sampled_from(sorted(CHAINS)), count=st.integers(2, 24), cost=st.integers(1, 3))
    def burst(self, chain, count, cost):
        """Identical debits all at once: whatever their order, exactly as many pass as the buckets can pay."""
        COUNTS["burst"] += 1
        results = self.run(_together(*(self.debit_call(request(chain, cost, self.now)) for _ in range(count))))
        self._burst_agrees(chain, cost, [r.outcome if r is not None else None for r in results])

    def _burst_agrees(self, chain, cost, outcomes):
        """Exactly as many pass as the buckets can pay. When the store could not answer some (None), those may
        have held credit until refunded, so only each acknowledged one must have been payable."""
        if None not in outcomes:
            expected = [self.model.debit(chain, cost, self.now) for _ in outcomes]
            assert collections.Counter(outcomes) == collections.Counter(expected), (chain, cost, outcomes)
            return
        for outcome in outcomes:
            if outcome is Outcome.DEBITED:
                assert self.model.debit(chain, cost, self.now) is Outcome.DEBITED, (chain, cost, outcomes)

    @precondition(sometimes)
    @rule(target=records, chain=st.sampled_from(sorted(set(CHAINS) - {"free"})), cost=st.integers(1, 6))
    def authz_killed_between_debit_and_answer(self, chain, cost):
        """An authz process has its debit judged by the store and is killed (SIGKILL) before it answers; Envoy
        retries the check on another replica with the same request id, so the same debit id: answered from the
        record if the first spent, judged anew if it did not — charged once either way."""
        COUNTS["authz_killed"] += 1
        first = request(chain, cost, self.now)
        spec = {**_fields(first), "ids": list(first.revocation_ids), "buckets": bucket_specs(first.buckets)}
        killed = subprocess.Popen(
            [sys.executable, "-c", KILLED_BEFORE_ANSWERING, self.url, json.dumps(spec)],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert killed.stdout is not None
        judged = killed.stdout.readline().strip()
        assert judged in {"debited", "insufficient", "revoked", "expired", "unknown"}, judged
        killed.kill()
        killed.wait()
        killed.stdout.close()
        for _ in range(50):  # Envoy's retry, until a store answers
            retry = DebitRequest(**{**_fields(first), "attempt": secrets.token_hex(8), "deadline": time.time() + 2})
            result = self.run(self.debit_call(retry))
            if result is not None:
                break
            time.sleep(0.1)
        else:
            raise AssertionError("the store never answered the retry")
        expected = self.model.debit(chain, cost, self.now)
        assert result.outcome is expected, (judged, result)
        if judged == "debited":
            assert result.replayed, result  # the first attempt's record: not charged again
        COUNTS["authz_killed_after_spending"] += result.replayed
        if expected is not Outcome.DEBITED:
            return None
        spender = first.attempt if result.replayed else retry.attempt
        record = Record(first.debit_id, spender, chain, cost, self.now, result.charged)
        self.model.records[record.debit_id] = record
        return record

    @rule(seconds=st.sampled_from([0.5, 30, 59, 61, 600, 3599, 3600, 86400]))
    def advance(self, seconds):
        COUNTS["advance"] += 1
        self.now += seconds

    @rule()
    def cancelled_mid_debit(self):
        """The caller gives up while the debit is in the store: what it spent is refunded, nothing is kept."""
        COUNTS["cancelled"] += 1

        async def cancel_soon() -> None:
            task = asyncio.ensure_future(self.ledger.debit(request("team", 1, self.now)))
            await asyncio.sleep(0)
            task.cancel()
            try:
                result = await task
            except (asyncio.CancelledError, LedgerUnavailable):
                return
            if result.outcome is Outcome.EXPIRED:
                return
            # it finished before the cancel landed: a normal debit
            assert result.outcome is self.model.debit("team", 1, self.now)

        self.run(cancel_soon())
        self.run(self.ledger_settled())

    async def ledger_settled(self) -> None:
        """Refunds owed to cancelled callers are paid in the background: wait for them."""
        refunds = getattr(self.ledger, "_refunds", None)
        if refunds is not None:
            await refunds.drain(DEADLINE + 8)

    # -------------------------------------------------------------- the invariant
    @invariant()
    def every_bucket_holds_what_the_model_says(self):
        self.steps += 1
        self.run(self.ledger_settled())
        stored, _ = self.retried(lambda: self.ledger.remaining_each(TENANT, ALL_BUCKETS, at=self.now))
        expected = [max(self.model.left(b, self.now), 0) for b in ALL_BUCKETS]
        assert stored == expected, {
            b.bucket_id[:1]: (s, e) for b, s, e in zip(ALL_BUCKETS, stored, expected, strict=True)
        }
        assert all(self.model.left(b, self.now) >= 0 for b in ALL_BUCKETS)  # never overspent


class SqliteMachine(LedgerMachine):
    directory: Path

    def open(self):
        self.path = self.directory / f"ledger-{secrets.token_hex(4)}.db"
        self.url = f"sqlite:///{self.path}"
        return fresh_ledger(self.url)

    @rule(
        cost=st.integers(1, 3),
        here=st.integers(1, 12),
        there=st.integers(1, 12),
        chain=st.sampled_from(["pool", "team", "hourly", "team-minutely"]),
    )
    def two_writer_processes(self, chain, cost, here, there):
        """A second process debits the same file at the same moment as this one."""
        COUNTS["two_writer_processes"] += 1
        ids, buckets = CHAINS[chain]
        spec = {
            "tenant": TENANT,
            "ids": list(ids),
            "cost": cost,
            "at": self.now,
            "buckets": bucket_specs(buckets),
        }
        other = self._other_writer()
        assert other.stdin is not None and other.stdout is not None
        other.stdin.write(json.dumps({**spec, "count": there}) + "\n")
        other.stdin.flush()
        assert other.stdout.readline().strip() == "ready"
        other.stdin.write("go\n")
        other.stdin.flush()
        mine = self.run(_together(*(self.debit_call(request(chain, cost, self.now)) for _ in range(here))))
        theirs = other.stdout.readline()
        outcomes = [r.outcome if r is not None else None for r in mine]
        outcomes += [Outcome(o) if o is not None else None for o in json.loads(theirs)]
        self._burst_agrees(chain, cost, outcomes)

    def _other_writer(self) -> subprocess.Popen:
        """The second writer process, started once per run and fed one burst at a time."""
        if getattr(self, "other", None) is None:
            self.other = subprocess.Popen(
                [sys.executable, "-c", OTHER_WRITER, self.url],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
            )
        return self.other

    def teardown(self) -> None:
        other = getattr(self, "other", None)
        if other is not None:
            assert other.stdin is not None
            other.stdin.close()
            other.wait(timeout=30)
        super().teardown()

    @precondition(sometimes)
    @rule(chain=st.sampled_from(["pool", "team-minutely"]))
    def write_lock_held_past_the_deadline(self, chain):
        COUNTS["write_lock_held"] += 1
        holder = hold_write_lock(self.path, 0.3)
        try:
            try:
                result = self.run(self.ledger.debit(request(chain, 1, self.now, deadline=time.time() + 0.1)))
                assert result.outcome is Outcome.EXPIRED, result
            except LedgerUnavailable:
                pass
        finally:
            holder.wait(timeout=10)


class RedisMachine(LedgerMachine):
    server: RedisServer

    def open(self):
        self.server.cli("flushall")  # our private instance
        self.url = self.server.url + "?timeout_ms=250"
        return fresh_ledger(self.url)

    @precondition(sometimes)
    @rule()
    def redis_restarted_from_its_aof(self):
        COUNTS["redis_restarted"] += 1
        self.server.kill()
        self.server.start()

    @precondition(sometimes)
    @rule(chain=st.sampled_from(["pool", "team-minutely", "daily-hourly"]))
    def redis_paused_past_the_deadline(self, chain):
        """SIGSTOP while a debit is on its way: when Redis wakes, its own clock is past the deadline."""
        COUNTS["redis_paused"] += 1
        assert self.server.process is not None
        self.server.process.send_signal(signal.SIGSTOP)
        try:
            try:
                result = self.run(self.ledger.debit(request(chain, 1, self.now, deadline=time.time() + 0.15)))
                assert result.outcome is Outcome.EXPIRED, result
            except LedgerUnavailable:
                pass
            time.sleep(0.2)
        finally:
            self.server.process.send_signal(signal.SIGCONT)

    @precondition(sometimes)
    @rule()
    def connections_dropped(self):
        """Every client connection killed between two calls: the next call is resent once, never applied twice."""
        COUNTS["connections_dropped"] += 1
        self.server.cli("client", "kill", "type", "normal")


def _settings(examples: int):
    steps = STEPS if not SOAK_STEPS else 50
    return settings(
        max_examples=examples if not SOAK_STEPS else max(SOAK_STEPS // steps, 1),
        stateful_step_count=steps,
        deadline=None,
        print_blob=True,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    )


def _report(store: str) -> None:
    """./dev soak: what ran, rule by rule (a test run prints nothing)."""
    if SOAK_STEPS:
        print(f"\nsoak {store}: {sum(COUNTS.values())} steps", dict(sorted(COUNTS.items())))
    COUNTS.clear()


@pytest.fixture(scope="module")
def persistent_redis(tmp_path_factory):
    server = RedisServer(tmp_path_factory.mktemp("redis-aof"), persistent=True).start()
    yield server
    server.stop()


def test_sqlite_against_the_model(tmp_path):
    SqliteMachine.directory = tmp_path
    run_state_machine_as_test(SqliteMachine, settings=_settings(12))
    _report("sqlite")


def test_redis_against_the_model(persistent_redis):
    RedisMachine.server = persistent_redis
    run_state_machine_as_test(RedisMachine, settings=_settings(12))
    _report("redis")
