"""One check's outcome as the pipeline builds it: the Answer Envoy applies and what metrics, usage, logs and
traces say about it."""

from __future__ import annotations

from dataclasses import dataclass

from authz_server.responses import Answer
from satgate.tokens.verify import VerifiedToken


@dataclass(slots=True)
class Decision:
    answer: Answer
    token: VerifiedToken | None = None
    charged: int = 0
    remaining: int | None = None
    decided: Answer | None = None  # observe mode: the decision made, while `answer` (an allow) is what Envoy does
    cost: int | None = None  # once the route (and MCP body) priced the request
    ledger_seconds: float | None = None  # the ledger step, when it was reached

    @property
    def status(self) -> int:
        return (self.decided or self.answer).status

    @property
    def error(self) -> str | None:
        return (self.decided or self.answer).error

    @property
    def enforced(self) -> bool:
        return self.decided is None
