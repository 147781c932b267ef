"""Answer a write only once replicas hold it (`wait_replicas`). Redis replicates asynchronously: a primary that
dies takes the writes it acknowledged but had not yet sent with it, and Sentinel promotes a replica without them —
lost debits (spent again: overspend), lost idempotency records (a resend applied twice), lost revocations (a
revoked token that works again). WAIT, sent on the same connection after the writes, returns how many replicas
acknowledged every write that connection made; a write that reached fewer in time is answered as unavailable
(fail closed), and a debit among them is refunded like any other whose answer was lost."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from redis.exceptions import NoScriptError

from satgate.ledger.base import LedgerUnavailable

Send = Callable[[float], Awaitable[Any]]


class Replication:
    def __init__(self, replicas: int, timeout: float) -> None:
        self.replicas = replicas
        # Half the call's timeout: WAIT must answer (with a count) before the socket gives up on it.
        self._wait_ms = max(1, int(timeout * 500))  # never 0: WAIT 0 blocks forever

    def wait(self, pipe: Any) -> None:
        if self.replicas:
            pipe.execute_command("WAIT", self.replicas, self._wait_ms)

    def split(self, replies: list[Any]) -> tuple[list[Any], bool]:
        """(the writes' replies, whether enough replicas acknowledged them)"""
        if not self.replicas:
            return replies, True
        *writes, acknowledged = replies
        return writes, isinstance(acknowledged, int) and acknowledged >= self.replicas

    def unacknowledged(self) -> LedgerUnavailable:
        return LedgerUnavailable(
            f"ledger: redis: the write did not reach {self.replicas} replica(s) within {self._wait_ms} ms "
            "(wait_replicas): a replica is down or lagging"
        )

    async def write(self, client: Any, call: Callable[[Send], Awaitable[Any]], *command: Any) -> Any:
        """One write sent through `call` (the ledger's timeout and resend rules), answered once enough replicas
        hold it; else LedgerUnavailable — it may have been applied: every write sent so is safe to send again
        (revocations are a set, refunds, settlements and budget changes carry their id). NoScriptError is raised
        as is (script() loads the script and sends again)."""

        async def send(_gives_up: float) -> list[Any]:
            pipe = client.pipeline(transaction=False)
            pipe.execute_command(*command)
            self.wait(pipe)
            return await pipe.execute(raise_on_error=False)

        (reply,), replicated = self.split(await call(send))
        if isinstance(reply, NoScriptError):
            raise reply
        if isinstance(reply, Exception):
            raise LedgerUnavailable(f"ledger: redis: {type(reply).__name__}: {reply}")
        if not replicated:
            raise self.unacknowledged()
        return reply

    async def script(
        self,
        client: Any,
        call: Callable[[Send], Awaitable[Any]],
        sha: str,
        keys: list[str],
        args: list[Any],
        *,
        load: Callable[[], Awaitable[Any]],
    ) -> Any:
        """write() of one EVALSHA; a Redis restarted or promoted without the script never ran it: `load` it, and
        send it once more."""
        command = ("EVALSHA", sha, len(keys), *keys, *args)
        try:
            return await self.write(client, call, *command)
        except NoScriptError:
            await load()
            return await self.write(client, call, *command)
