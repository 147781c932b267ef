"""A thread that owns one SQLite connection, so the event loop never waits on SQLite (SPEC: Ledger I/O never
blocks the event loop). Transactional threads commit every job waiting at that moment in one IMMEDIATE
transaction (group commit) and answer none of them before COMMIT returned."""

from __future__ import annotations

import asyncio
import queue
import sqlite3
import threading
from collections.abc import Callable
from typing import Any, TypeVar

from satgate.ledger.base import LedgerNotInitialised, LedgerUnavailable

T = TypeVar("T")
Job = Callable[[sqlite3.Connection], Any]
FileIdentity = tuple[int, int]
_MAX_BATCH = 256


class SqliteThread:
    def __init__(
        self,
        connect: Callable[[], tuple[sqlite3.Connection, FileIdentity]],
        check: Callable[[sqlite3.Connection, FileIdentity], None],
        *,
        transactional: bool,
        name: str,
    ) -> None:
        self._connect, self._check = connect, check
        self._transactional = transactional
        self._name = name
        self._queue: queue.SimpleQueue[tuple[Job, asyncio.Future[Any], asyncio.AbstractEventLoop] | None]
        self._queue = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._closed = False

    async def run(self, job: Callable[[sqlite3.Connection], T]) -> T:
        return await self.submit(job)

    def submit(self, job: Callable[[sqlite3.Connection], T]) -> asyncio.Future[T]:
        """The job's future; the job runs (and commits) even if the caller stops waiting for it."""
        if self._closed:
            raise LedgerUnavailable("ledger: closed")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._start()
        self._queue.put((job, future, loop))
        return future

    def _start(self) -> None:
        if self._thread is None:
            with self._lock:
                if self._thread is None:
                    self._thread = threading.Thread(target=self._serve, name=self._name, daemon=True)
                    self._thread.start()

    async def close(self) -> None:
        self._closed = True
        if self._thread is not None:
            self._queue.put(None)
            await asyncio.to_thread(self._thread.join)

    # ---------------------------------------------------------------------------------------- the thread
    def _serve(self) -> None:
        db: sqlite3.Connection | None = None
        identity: FileIdentity = (0, 0)
        while (batch := self._next_batch()) is not None:
            try:
                if db is None:
                    db, identity = self._connect()
                self._check(db, identity)
                outcomes = self._execute(db, batch)
            except LedgerNotInitialised as exc:  # gone or replaced: open afresh next time (it may be restored)
                if db is not None:
                    db.close()
                    db = None
                outcomes = [(None, exc)] * len(batch)
            except sqlite3.Error as exc:
                outcomes = [(None, LedgerUnavailable(f"ledger: {exc}"))] * len(batch)
            except Exception as exc:  # a bug: the caller answers 503 and logs it
                outcomes = [(None, exc)] * len(batch)
            self._deliver(batch, outcomes)
        if db is not None:
            db.close()

    def _next_batch(self) -> list[tuple[Job, asyncio.Future[Any], asyncio.AbstractEventLoop]] | None:
        first = self._queue.get()
        if first is None:
            return None
        batch = [first]
        while self._transactional and len(batch) < _MAX_BATCH:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item is None:
                self._queue.put(None)  # stop after this batch
                break
            batch.append(item)
        return batch

    def _execute(self, db: sqlite3.Connection, batch: list[Any]) -> list[tuple[Any, BaseException | None]]:
        if not self._transactional:
            outcomes: list[tuple[Any, BaseException | None]] = []
            for job, _future, _loop in batch:
                try:
                    outcomes.append((job(db), None))
                except sqlite3.Error as exc:
                    outcomes.append((None, LedgerUnavailable(f"ledger: {exc}")))
            return outcomes
        db.execute("BEGIN IMMEDIATE")  # waits for the write lock here, in this thread
        try:
            results = [job(db) for job, _future, _loop in batch]
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")
        return [(result, None) for result in results]

    @staticmethod
    def _deliver(batch: list[Any], outcomes: list[tuple[Any, BaseException | None]]) -> None:
        by_loop: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future[Any], Any, BaseException | None]]] = {}
        for (_job, future, loop), (result, error) in zip(batch, outcomes, strict=True):
            by_loop.setdefault(loop, []).append((future, result, error))
        for loop, settled in by_loop.items():
            try:
                loop.call_soon_threadsafe(_settle, settled)
            except RuntimeError:  # that loop is closed: nobody waits any more
                continue


def _settle(settled: list[tuple[asyncio.Future[Any], Any, BaseException | None]]) -> None:
    for future, result, error in settled:
        if future.cancelled():
            continue
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)
