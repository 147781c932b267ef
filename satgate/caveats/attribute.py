from __future__ import annotations

from dataclasses import dataclass

from satgate.caveats.base import Denial, RequestFacts


@dataclass(frozen=True, slots=True)
class Attribute:
    """A declared attribute (`department = eng`). Always holds on its own; a route's `require.<key>`
    is checked against all of a token's attributes by the pipeline."""

    key: str
    value: str

    def check(self, facts: RequestFacts) -> Denial | None:
        return None
