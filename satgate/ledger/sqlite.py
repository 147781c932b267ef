"""Embedded ledger: SQLite in WAL mode, safe across processes on one host.

A debit first tries its transaction right on the event loop, without waiting: when the write lock is free (the
common case) that is one short IMMEDIATE transaction (~40 µs), cheaper than any thread hop. When another process
holds the lock, the debit goes to the writer thread instead, which waits for the lock there and commits every debit
waiting at that moment in one IMMEDIATE transaction (group commit, SPEC: Ledger): each judged in arrival order, none
answered before its COMMIT. So a wait for the write lock never stalls the event loop, other checks or health; reads
(WAL never makes them wait for a writer) run on the loop too, with a reader thread behind them for the rare busy
answer. With synchronous=FULL every debit takes the writer thread: an fsync must not run on the loop either.
The ledger is never created here: `satgate ledger init` creates the file and its marker (satgate/ledger/marker.py),
and a file without that marker, or one deleted or replaced while open, is refused.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import sqlite3
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

from satgate.ledger import sqlite_jobs
from satgate.ledger.base import (
    IDEMPOTENCY_WINDOW_SECONDS,
    Bucket,
    BudgetAdjustment,
    DebitRequest,
    DebitResult,
    LedgerNotInitialised,
    LedgerUnavailable,
    Outcome,
    SettleResult,
    windowed,
)
from satgate.ledger.refunds import Refunds
from satgate.ledger.sqlite_schema import (
    MARKER_SQL,
    debit_hash_of,
    marker_and_revoked_sql,
    upgrade,
)
from satgate.ledger.sqlite_threads import SqliteThread
from satgate.sqlite_db import enable_wal

_SWEEP_EVERY = 4096  # debits between sweeps of expired debit records
_CHECKPOINT_EVERY = 1000  # commits on the loop's connection between (passive) checkpoints in the writer thread
T = TypeVar("T")


def _is_busy(exc: sqlite3.Error) -> bool:
    return getattr(exc, "sqlite_errorcode", None) in {sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED}


class _Busy(Exception):
    """The write lock is taken (or a read got SQLITE_BUSY): hand the job to a thread, which may wait."""


class SqliteLedger:
    def __init__(
        self,
        path: str | Path,
        *,
        synchronous: str = "NORMAL",
        busy_timeout_ms: int = 2000,
        idempotency_window_seconds: int = IDEMPOTENCY_WINDOW_SECONDS,
    ) -> None:
        """synchronous=NORMAL in WAL survives any process crash (what 'acknowledged' needs here); FULL also
        survives power loss, at an fsync per commit. Opening is lazy and repeated until it succeeds: a missing or
        unmarked file makes every call fail closed, and the server recovers once the ledger is there."""
        if synchronous.upper() not in {"NORMAL", "FULL", "EXTRA"}:
            raise ValueError(f"ledger: synchronous must be NORMAL, FULL or EXTRA, not {synchronous!r}")
        self.path = Path(path)
        self._synchronous = synchronous.upper()
        self._busy_timeout_ms = busy_timeout_ms
        self._window = idempotency_window_seconds  # the SPEC's 10 minutes; shorter only in tests and the bench
        self._writer = SqliteThread(self._connect, self._check_file, transactional=True, name="satgate-ledger-writer")
        self._reader = SqliteThread(self._connect, self._check_file, transactional=False, name="satgate-ledger-reader")
        self._debits = 0
        self._loop_db: sqlite3.Connection | None = None  # the event loop's own connection: never waits for a lock
        self._loop_identity: tuple[int, int] = (0, 0)
        self._closed = False
        self._loop_commits = 0
        self._on_loop = self._synchronous == "NORMAL"
        self._background: set[asyncio.Task[Any]] = set()
        self._opening: asyncio.Future[None] | None = None
        self._queued: list[
            tuple[Callable[[sqlite3.Connection], DebitResult], asyncio.Future[DebitResult], DebitRequest]
        ] = []
        self._refunds = Refunds(self)

    # ------------------------------------------------------------------------------------ the file
    def _connect(self) -> tuple[sqlite3.Connection, tuple[int, int]]:
        """A connection to the existing, marked ledger file, and the file's identity (device, inode)."""
        try:
            # mode=rw: never create the file (a wrong path must not become an empty ledger)
            db = sqlite3.connect(f"file:{self.path}?mode=rw", uri=True, isolation_level=None, check_same_thread=False)
        except sqlite3.OperationalError as exc:
            raise LedgerNotInitialised(
                f"ledger: no SQLite ledger at {self.path} ({exc}); if this is a new ledger, create it with "
                "'satgate ledger init', otherwise restore the file or fix the ledger: path"
            ) from None
        try:
            db.execute(f"PRAGMA busy_timeout = {int(self._busy_timeout_ms)}")
            enable_wal(db, self._busy_timeout_ms)
            db.execute(f"PRAGMA synchronous = {self._synchronous}")
            identity = os.stat(self.path)
            self._require_marker(db)
            upgrade(db)  # a ledger made before v2.1 gets its new tables (needs the write lock once)
        except sqlite3.OperationalError:  # locked, busy: the ledger is there, just not available now
            db.close()
            raise
        except sqlite3.DatabaseError as exc:  # not a database, malformed: a corrupt or foreign file
            db.close()
            raise LedgerNotInitialised(
                f"ledger: {self.path} is not a usable SQLite ledger ({exc}); restore it from a backup, or fix the "
                "ledger: path"
            ) from None
        except BaseException:
            db.close()
            raise
        return db, (identity.st_dev, identity.st_ino)

    def _require_marker(self, db: sqlite3.Connection) -> None:
        self._marked_row(db, MARKER_SQL)

    def _marked_row(self, db: sqlite3.Connection, sql: str, params: tuple[object, ...] = ()) -> tuple[Any, ...]:
        """The row of a statement whose first column is the ledger marker: the marker check and a read in one."""
        try:
            row = db.execute(sql, params).fetchone()
        except sqlite3.DatabaseError as exc:  # no such table (an emptied file), not a database, …
            if _is_busy(exc):  # the ledger is there, only busy right now: not a lost ledger
                raise
            row, detail = None, str(exc)
        else:
            detail = "no ledger marker"
        if row is None or row[0] is None:
            raise LedgerNotInitialised(
                f"ledger: {self.path} is not an initialised SatGate ledger ({detail}): it was emptied or replaced, "
                "or the path is wrong. Restore it from a backup; run 'satgate ledger init' only for a new ledger"
            )
        return row

    def _check_file(self, db: sqlite3.Connection, identity: tuple[int, int]) -> None:
        """Before each batch: the path still names the file this connection has open, and it carries its marker."""
        self._check_identity(identity)
        self._require_marker(db)

    def _check_identity(self, identity: tuple[int, int]) -> None:
        """A deleted or replaced file would otherwise take debits that vanish at the next restart."""
        try:
            now = os.stat(self.path)
        except OSError:
            raise LedgerNotInitialised(
                f"ledger: {self.path} was deleted while open; restore it from a backup (debits wait until then)"
            ) from None
        if (now.st_dev, now.st_ino) != identity:
            raise LedgerNotInitialised(f"ledger: {self.path} was replaced while open; reopening it")

    # ------------------------------------------------------------------------------------ the loop's connection
    async def _loop_connection(self) -> sqlite3.Connection | None:
        """Opened in a thread (opening may wait), then used without ever waiting: busy_timeout 0, and no
        checkpoints on it (the writer thread runs them). None while the ledger cannot be opened: the threads then
        answer, with the reason."""
        if self._closed:
            raise LedgerUnavailable("ledger: closed")
        if not self._on_loop:
            return None
        if self._loop_db is None:
            # One opening for every caller of a cold burst (each opening its own would leak all but one, and
            # resume them in the order their threads finished, not the order they arrived).
            if self._opening is None:
                self._opening = asyncio.ensure_future(self._open_loop_connection())
            opening = self._opening
            try:
                await asyncio.shield(opening)
            finally:
                if opening.done():
                    self._opening = None
        return self._loop_db

    async def _open_loop_connection(self) -> None:
        try:
            db, identity = await asyncio.to_thread(self._connect)
        except (LedgerUnavailable, sqlite3.Error):
            return
        db.execute("PRAGMA busy_timeout = 0")
        db.execute("PRAGMA wal_autocheckpoint = 0")
        if self._closed:
            db.close()
            return
        self._loop_db, self._loop_identity = db, identity

    def _check_loop_file(self, db: sqlite3.Connection) -> None:
        """Before every job, as the threads do: the path still names the file this connection has open."""
        try:
            self._check_identity(self._loop_identity)
        except LedgerUnavailable:
            db.close()
            self._loop_db = None
            raise

    def _write_now(self, db: sqlite3.Connection, jobs: list[Callable[[sqlite3.Connection], T]]) -> list[T]:
        """Every job in one IMMEDIATE transaction, in order; none is answered before the COMMIT."""
        self._check_loop_file(db)
        try:
            db.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            raise _Busy from exc  # another process writes: the writer thread will wait for it, not the loop
        try:
            self._require_marker(db)  # inside the transaction: what the debit reads is the marked ledger
            results = [job(db) for job in jobs]
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        self._loop_commits += 1
        if self._loop_commits % _CHECKPOINT_EVERY == 0:
            self._spawn(self._checkpoint())
        return results

    def _read_now(self, db: sqlite3.Connection, job: Callable[[sqlite3.Connection], T], checks_marker: bool) -> T:
        """`checks_marker`: the job's own statement reads the marker (one statement instead of two)."""
        self._check_loop_file(db)
        try:
            if not checks_marker:
                self._require_marker(db)
            return job(db)
        except sqlite3.OperationalError as exc:
            if _is_busy(exc):
                raise _Busy from exc
            raise

    async def _try_on_loop(
        self, job: Callable[[sqlite3.Connection], T], *, write: bool, checks_marker: bool = False
    ) -> tuple[bool, Any]:
        """(True, result) when the job ran on the loop without waiting; (False, None) when a thread must run it."""
        db = await self._loop_connection()
        if db is None:
            return False, None
        try:
            return True, (self._write_now(db, [job])[0] if write else self._read_now(db, job, checks_marker))
        except _Busy:
            return False, None
        except sqlite3.DatabaseError as exc:
            raise LedgerUnavailable(f"ledger: {exc}") from exc

    async def _run(self, job: Callable[[sqlite3.Connection], T], *, write: bool, checks_marker: bool = False) -> T:
        """On the loop when that needs no wait, else in the thread (which checks the marker before every batch)."""
        done, result = await self._try_on_loop(job, write=write, checks_marker=checks_marker)
        if done:
            return result
        return await (self._writer if write else self._reader).run(job)

    async def _checkpoint(self) -> None:
        """A passive checkpoint (never waits for readers or writers), outside any transaction: the reader thread."""
        with contextlib.suppress(LedgerUnavailable):
            await self._reader.run(lambda db: db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone())

    def _spawn(self, work: Coroutine[Any, Any, Any]) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    # ------------------------------------------------------------------------------------ debits
    async def debit(self, request: DebitRequest) -> DebitResult:
        if not request.buckets:  # nothing to spend: a read, no write lock
            return await self._run(functools.partial(self._unbudgeted, request), write=False, checks_marker=True)
        job = functools.partial(self._debit, request)
        future: asyncio.Future[DebitResult] = asyncio.get_running_loop().create_future()
        if await self._loop_connection() is None:
            self._hand_to_writer(job, future, request)
        else:
            # Group commit (SPEC: Ledger): the debits that arrive in one turn of the loop share one transaction,
            # judged in arrival order, each answered only after the COMMIT.
            self._queued.append((job, future, request))
            if len(self._queued) == 1:
                asyncio.get_running_loop().call_soon(self._commit_queued)
        try:
            return await future  # cancelled while queued: it is skipped, nothing spent
        except asyncio.CancelledError:
            self._refund_if_spent(request, future)  # committed, then its caller went away
            raise

    def _commit_queued(self) -> None:
        batch = [queued for queued in self._queued if not queued[1].cancelled()]
        self._queued = []
        if not batch:
            return
        db = self._loop_db
        try:
            if db is None:
                raise _Busy
            results = self._write_now(db, [job for job, _future, _request in batch])
        except _Busy:
            for job, future, request in batch:
                self._hand_to_writer(job, future, request)
            return
        except Exception as exc:  # nothing committed: every debit of the batch fails closed
            error = LedgerUnavailable(f"ledger: {exc}") if isinstance(exc, sqlite3.DatabaseError) else exc
            for _job, future, _request in batch:
                future.set_exception(error)
            return
        for (_job, future, _request), result in zip(batch, results, strict=True):
            future.set_result(result)

    def _hand_to_writer(
        self, job: Callable[[sqlite3.Connection], DebitResult], waiting: asyncio.Future[DebitResult], req: DebitRequest
    ) -> None:
        """The writer thread commits it even if its caller goes away meanwhile: then what it spent is refunded."""
        try:
            pending = self._writer.submit(job)
        except LedgerUnavailable as exc:
            waiting.set_exception(exc)
            return

        def settle(done: asyncio.Future[DebitResult]) -> None:
            if waiting.cancelled():
                self._refund_if_spent(req, done)
            elif done.exception() is not None:
                waiting.set_exception(done.exception())  # type: ignore[arg-type]
            else:
                waiting.set_result(done.result())

        pending.add_done_callback(settle)

    def _refund_if_spent(self, request: DebitRequest, pending: asyncio.Future[DebitResult]) -> None:
        if pending.done() and not pending.cancelled() and pending.exception() is None and pending.result().spent:
            self._refunds.owe(request, "caller_gone")

    def _unbudgeted(self, req: DebitRequest, db: sqlite3.Connection) -> DebitResult:
        if req.deadline is not None and time.time() > req.deadline:
            return DebitResult(Outcome.EXPIRED)
        params = (req.tenant, *req.revocation_ids)
        _marker, revoked = self._marked_row(db, marker_and_revoked_sql(len(req.revocation_ids)), params)
        if revoked:
            return DebitResult(Outcome.REVOKED)
        return DebitResult(Outcome.DEBITED, charged=req.cost, remaining=None)

    def _debit(self, req: DebitRequest, db: sqlite3.Connection) -> DebitResult:
        """Inside the writer's transaction, after the write lock was taken: the deadline is judged now."""
        now = time.time()
        result = sqlite_jobs.debit(db, req, now, self._window)
        self._debits += 1
        if self._debits % _SWEEP_EVERY == 0:
            sqlite_jobs.sweep(db, int(now // self._window), now if req.checked_at is None else req.checked_at)
        return result

    async def refund(self, request: DebitRequest) -> int:
        if debit_hash_of(request.tenant, request.debit_id) is None or not request.buckets:
            return 0
        return await self._run(lambda db: sqlite_jobs.refund(db, request, time.time(), self._window), write=True)

    async def settle(self, request: DebitRequest, actual: int) -> SettleResult:
        if debit_hash_of(request.tenant, request.debit_id) is None or not request.buckets:
            return SettleResult(settled=False)
        return await self._run(
            lambda db: sqlite_jobs.settle(db, request, actual, time.time(), self._window), write=True
        )

    async def revoke(self, tenant: str, revocation_id: str, reason: str = "") -> bool:
        return await self._run(lambda db: sqlite_jobs.revoke(db, tenant, revocation_id, reason), write=True)

    async def is_revoked(self, tenant: str, revocation_ids: tuple[str, ...]) -> bool:
        return await self._run(lambda db: sqlite_jobs.any_revoked(db, tenant, revocation_ids), write=False)

    async def remaining(self, tenant: str, buckets: tuple[Bucket, ...], *, at: float | None = None) -> int | None:
        each = await self.remaining_each(tenant, buckets, at=at)
        return min(each) if each else None

    async def adjust(
        self, tenant: str, bucket: Bucket, delta: int, change_id: str, *, at: float | None = None
    ) -> BudgetAdjustment:
        """In the writer's IMMEDIATE transaction, as debits are; it runs once, so `change_id` needs no record."""
        when = time.time() if at is None else at
        return await self._run(lambda db: sqlite_jobs.adjust(db, tenant, bucket, delta, when), write=True)

    async def set_limit(self, tenant: str, bucket: Bucket, limit: int, *, if_unset: bool = False) -> bool:
        windowed(bucket)
        return await self._run(lambda db: sqlite_jobs.set_limit(db, tenant, bucket, limit, if_unset), write=True)

    async def revoked_each(self, tenant: str, revocation_ids: tuple[str, ...]) -> list[bool]:
        if not revocation_ids:
            return []
        return await self._run(lambda db: sqlite_jobs.revoked_each(db, tenant, revocation_ids), write=False)

    async def remaining_each(self, tenant: str, buckets: tuple[Bucket, ...], *, at: float | None = None) -> list[int]:
        """Windowed buckets in the window of `at` (default now)."""
        if not buckets:
            return []
        return [left for left, _limit in await self.balances_each(tenant, buckets, at=at)]

    async def balances_each(
        self, tenant: str, buckets: tuple[Bucket, ...], *, at: float | None = None
    ) -> list[tuple[int, int | None]]:
        if not buckets:
            return []
        when = time.time() if at is None else at
        balances = await self._run(lambda db: sqlite_jobs.balances(db, tenant, buckets, when), write=False)
        return [
            (max(left, 0), None if bucket.period is None else limit)  # a lifetime row mixes spending and changes
            for (left, limit), bucket in zip(balances, buckets, strict=True)
        ]

    async def probe(self) -> None:
        await self._reader.run(lambda db: None)  # the reader checks the file and marker before every job

    async def close(self) -> None:
        await self._refunds.drain()  # refunds owed are paid before the ledger closes
        self._closed = True
        if self._background:
            await asyncio.wait(list(self._background), timeout=5)
        if self._loop_db is not None:
            self._loop_db.close()
            self._loop_db = None
        await self._writer.close()
        await self._reader.close()
