"""Observe mode (route setting `mode: observe`, or `authz.mode`): the decision is made, logged, counted and
recorded exactly as in enforce mode, but Envoy is told to allow, and the upstream learns what would have happened
from `x-satgate-observed-decision` ("allow", or the status and error: "402 budget_exhausted")."""

from __future__ import annotations

from collections.abc import Iterable

from authz_server.responses import Allow, Answer, TokenHeaders, allow_answer, spoofed_headers

OBSERVED_HEADER = "x-satgate-observed-decision"


def observed_value(decided: Answer) -> str:
    return "allow" if decided.allowed else f"{decided.status} {decided.error}"


def observed_allow(
    decided: Answer,
    token: TokenHeaders | None,
    charged: int,
    remaining: int | None,
    request_headers: Iterable[str],
) -> Answer:
    """The allow Envoy applies for `decided`: the token's headers when it verified, the observed decision, and
    every client-sent x-satgate-* look-alike removed as on any allow."""
    names = list(request_headers)
    observed = (OBSERVED_HEADER, observed_value(decided))
    if token is not None:
        base = decided if decided.allowed else allow_answer(Allow(token, charged, remaining), names)
    else:
        base = Answer(200, remove_headers=("authorization", *spoofed_headers(names, frozenset())), metadata={})
    return Answer(
        200,
        upstream_headers=(*base.upstream_headers, observed),
        remove_headers=tuple(h for h in base.remove_headers if h.lower() != OBSERVED_HEADER),
        downstream_headers=base.downstream_headers,
        metadata={**decided.metadata, **base.metadata, "observed": observed[1]},
    )
