"""The check pipeline, top to bottom: route → credential → token → (MCP body) → caveats and grants → ledger →
response. Nothing about the body is read before the token verified."""

from __future__ import annotations

import contextlib
import dataclasses
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import structlog

from authz_server.check_input import CheckInput
from authz_server.claims import signed_claim
from authz_server.decision import Decision
from authz_server.metrics import CheckMetrics
from authz_server.observe import observed_allow
from authz_server.request_facts import request_facts
from authz_server.responses import (
    BUDGET_RESET_HEADER,
    Allow,
    Answer,
    Reply,
    TokenHeaders,
    allow_answer,
    deny_answer,
)
from authz_server.tracing import end_check, start_check
from satgate import mcp
from satgate.caveats import Denial, RequestFacts
from satgate.judge import judge
from satgate.keyring import Keyring
from satgate.ledger import DebitRequest, Ledger, LedgerUnavailable, Outcome, refund_claims
from satgate.ledger.base import Crossing, DebitResult, LedgerNotInitialised
from satgate.ledger.idempotency import idempotency_key, unique_ids
from satgate.ledger.refunds import Refunds
from satgate.ledger.thresholds import DEFAULT_PERMILLE
from satgate.paths import ambiguity
from satgate.routes import RouteConfigError, RouteSettings, RouteTable
from satgate.timefmt import format_utc
from satgate.tokens.bearer import bearer_token
from satgate.tokens.verify import TokenRejected, TokenVerifier, VerifiedToken
from satgate.tracing import Tracing
from satgate.usage import UsageRecorder

UNAVAILABLE = Denial(503, "authz_unavailable", "authorization is temporarily unavailable")
TOO_LATE = Denial(503, "authz_unavailable", "the check outlived its deadline; nothing was charged")
# The store must have committed a debit this long before the caller's deadline, so the answer still reaches it.
DEADLINE_MARGIN_SECONDS = 0.1
REVOKED = Denial(401, "revoked", "token has been revoked")
_TOKEN_HEADERS_CACHED = 16384  # as many tokens as the verifier keeps


class BudgetHook(Protocol):
    """Told when a token's budget cannot pay, and when a debit crossed alert thresholds (for the audit log); must
    not block."""

    def __call__(self, token: VerifiedToken, cost: int, remaining: int | None) -> None: ...

    def crossed(self, token: VerifiedToken, crossings: tuple[Crossing, ...], remaining: int | None) -> None: ...

    async def close(self) -> None: ...


@dataclass(frozen=True, slots=True)
class CheckSettings:
    leeway_seconds: float = 30.0
    default_cost: int = 1
    pricing: Mapping[str, mcp.PricingTable] = field(default_factory=lambda: {"default": mcp.PricingTable()})
    attribute_headers: tuple[str, ...] = ()
    decision_log: str = "deny"  # all | deny | none
    mode: str = "enforce"  # enforce | observe: a route's `mode` setting wins
    observe_debit: bool = True  # observed requests are debited; false: revocation and budget read, never spent
    thresholds: tuple[int, ...] = DEFAULT_PERMILLE  # per mille of a bucket's limit: budget_threshold events


class CheckPipeline:
    def __init__(
        self,
        *,
        verifier: TokenVerifier,
        ledger: Ledger,
        routes: RouteTable,
        settings: CheckSettings,
        clock: Callable[[], float] = time.time,
        usage: UsageRecorder | None = None,
        on_budget_exhausted: BudgetHook | None = None,
        metrics: CheckMetrics | None = None,
        tracing: Tracing | None = None,
        keyring: Callable[[], Keyring] | None = None,
    ) -> None:
        self._keyring = keyring  # signs refund claims (routes with refund_on)
        self._metrics = metrics
        self._tracing = tracing
        self._usage = usage
        self._on_budget_exhausted = on_budget_exhausted
        self._verifier = verifier
        self._ledger = ledger
        self._routes = routes
        self._settings = settings
        self._clock = clock
        # Per instance: structlog caches a proxy's logger on first use, so a module-level one would keep
        # whatever sink existed when it was first used.
        self._logger = structlog.get_logger("satgate.authz")
        self._refunds = Refunds(ledger)
        self._by_token: dict[str, TokenHeaders] = {}

    async def probe(self) -> None:
        """Raise LedgerUnavailable unless the ledger can serve debits (readiness)."""
        await self._ledger.probe()

    async def close(self) -> None:
        await self._refunds.drain()  # a refund owed is paid before the server forgets it
        if self._on_budget_exhausted is not None:
            await self._on_budget_exhausted.close()  # it reads the ledger to name the bucket
        await self._ledger.close()
        if self._usage is not None:
            await self._usage.close()
        if self._tracing is not None:
            self._tracing.close()  # exports the spans still buffered

    async def check(self, request: CheckInput, deadline: float | None = None) -> Answer:
        """`deadline`: when the caller stops waiting (unix time), as the transport knows it (gRPC's deadline,
        which Envoy sets from its ext_authz timeout). Credits are spent only for answers that can arrive."""
        started = time.perf_counter()
        request_id = request.headers.get("x-request-id", "")
        span = start_check(self._tracing, request) if self._tracing is not None else None
        try:
            decision = await self._decide(request, request_id, deadline)
        except Exception:  # an RPC error is an outage to Envoy: always answer with a decision
            decision = Decision(deny_answer(UNAVAILABLE, request_id))
            with contextlib.suppress(Exception):
                self._logger.exception("check_failed", request_id=request_id)
        with contextlib.suppress(Exception):  # a broken log sink must not turn decisions into an outage
            self._log_decision(request, request_id, decision, started)
        if self._usage is not None:
            with contextlib.suppress(Exception):
                self._record_usage(self._usage, request, decision)
        if self._metrics is not None:
            token = decision.token
            self._metrics.decided(
                decision.status,
                decision.error,
                time.perf_counter() - started,
                token.tenant if token else None,
                decision.charged,
                enforced=decision.enforced,
            )
        if span is not None:
            with contextlib.suppress(Exception):
                end_check(span, decision)
        return decision.answer

    async def _decide(self, request: CheckInput, request_id: str, deadline: float | None) -> Decision:
        facts = request_facts(request, self._clock(), self._settings.leeway_seconds)

        # 1. route settings (context_extensions over the server-side route table); a bad one is never observed
        try:
            route = self._routes.settings_for(facts.host, facts.path, facts.method, request.context_extensions)
        except RouteConfigError as exc:
            self._logger.error("route_config_invalid", detail=str(exc), path=facts.path)
            return self._deny(UNAVAILABLE, request_id)
        # ... and a path other parsers could read differently is refused in every mode: observing it would let a
        # request reach an enforced route's upstream (`/public/..;/admin/`) with no token at all
        if (ambiguous := ambiguity(facts.path)) is not None:
            refused = Denial(400, "invalid_request", f"the path holds {ambiguous}: an upstream could read another path")
            return self._deny(refused, request_id, reply=Reply(mcp=route.mcp))
        observe = (route.mode or self._settings.mode) == "observe"
        decision = await self._decide_route(request, request_id, deadline, facts, route, observe=observe)
        if not observe:
            return decision
        token = self._token_headers(decision.token) if decision.token is not None else None
        allow = observed_allow(decision.answer, token, decision.charged, decision.remaining, request.headers)
        decision.answer, decision.decided = allow, decision.answer
        return decision

    async def _decide_route(
        self,
        request: CheckInput,
        request_id: str,
        deadline: float | None,
        facts: RequestFacts,
        route: RouteSettings,
        *,
        observe: bool,
    ) -> Decision:
        # Refusals before the token verified are JSON-RPC on MCP routes, but the body stays unread (id null):
        # strangers get no work done for them, and learn nothing from parse errors.
        reply = Reply(mcp=route.mcp)

        # 2. credential
        token_text = bearer_token(request.headers.get("authorization", ""))
        if isinstance(token_text, Denial):
            return self._deny(token_text, request_id, reply=reply)

        # 3. token: size-capped, signature chain verified before any side effect (refusals are cached too)
        try:
            token = self._verifier.verify(token_text)
        except TokenRejected as exc:
            return self._deny(exc.denial, request_id, reply=reply)

        # 4. (MCP) what the JSON-RPC body asks for: its tools and their price
        judged = self._mcp_body(route, request, facts, request_id, token)
        if isinstance(judged, Decision):
            return judged
        facts, cost, reply = judged

        # 5. caveats, and the grants the route needs (sealed by the issuer)
        denial = judge(token, route, facts)
        if denial is not None:
            return self._deny(denial, request_id, token, reply=reply)

        # 6. ledger: revocation, the debit's record and every budget bucket in one atomic step, by the deadline
        started = time.perf_counter()
        if observe and not self._settings.observe_debit:
            decision = await self._judge_read_only(token, cost, request, request_id, reply)
        else:
            decision = await self._debit(
                token, cost, request, request_id, reply=reply, facts=facts, route=route, deadline=deadline
            )
        decision.cost, decision.ledger_seconds = cost, time.perf_counter() - started
        return decision

    async def _debit(
        self,
        token: VerifiedToken,
        cost: int,
        request: CheckInput,
        request_id: str,
        *,
        reply: Reply,
        facts: RequestFacts,
        route: RouteSettings,
        deadline: float | None,
    ) -> Decision:
        key = idempotency_key(
            token.fingerprint,
            request_id,
            method=facts.method,
            path=request.path,
            host=facts.host,
            cost=cost,
            body=request.body if route.mcp else None,
        )
        debit = DebitRequest(
            token.tenant,
            token.revocation_ids,
            token.buckets,
            cost,
            debit_id=key or unique_ids.next(),
            deadline=None if deadline is None else deadline - DEADLINE_MARGIN_SECONDS,
            attempt=unique_ids.next(),
            checked_at=facts.now,
            thresholds=self._settings.thresholds,
        )
        try:
            result = await self._ledger.debit(debit)  # cancel-safe: a debit committed for a gone caller is refunded
        except LedgerUnavailable as exc:
            if self._metrics is not None:
                self._metrics.ledger_errors.inc()
            event = "ledger_not_initialised" if isinstance(exc, LedgerNotInitialised) else "ledger_unavailable"
            self._logger.error(event, detail=str(exc), token_id=token.token_id)
            return self._deny(UNAVAILABLE, request_id, token, reply=reply)
        if result.outcome is Outcome.EXPIRED:
            return self._deny(TOO_LATE, request_id, token, reply=reply)
        if result.spent and deadline is not None and time.time() > deadline:
            self._refunds.owe(debit, "answered_too_late")  # the caller has given up: this answer will not arrive
            return self._deny(TOO_LATE, request_id, token, reply=reply)
        if result.outcome is Outcome.REVOKED:
            return self._deny(REVOKED, request_id, token, reply=reply)
        if result.outcome is Outcome.INSUFFICIENT:
            if self._on_budget_exhausted is not None:
                with contextlib.suppress(Exception):
                    self._on_budget_exhausted(token, cost, result.remaining)
            return self._exhausted(result, cost, now=facts.now, request_id=request_id, token=token, reply=reply)
        if result.crossed and self._on_budget_exhausted is not None:
            with contextlib.suppress(Exception):
                self._on_budget_exhausted.crossed(token, result.crossed, result.remaining)

        # 7. response
        allow = Allow(self._token_headers(token), charged=result.charged, remaining=result.remaining)
        answer = allow_answer(allow, request.headers)
        if (route.refund_on or route.settle) and token.buckets and not result.replayed and self._keyring is not None:
            answer = self._claimed(answer, route, debit, token)
        return Decision(answer, token, result.charged, result.remaining)

    def _exhausted(
        self, result: DebitResult, cost: int, *, now: float, request_id: str, token: VerifiedToken, reply: Reply
    ) -> Decision:
        """402; when only windows are short, when to come back (Retry-After, x-satgate-budget-reset)."""
        exhausted = Denial(402, "budget_exhausted", f"budget cannot pay {cost} credits")
        if result.resets_at is None:
            return self._deny(exhausted, request_id, token, reply=reply, cost=cost, remaining=result.remaining)
        reset = format_utc(result.resets_at)
        headers = (("retry-after", str(max(math.ceil(result.resets_at - now), 1))), (BUDGET_RESET_HEADER, reset))
        return self._deny(
            exhausted, request_id, token, reply=reply, headers=headers, cost=cost, remaining=0, resets_at=reset
        )

    def _claimed(self, answer: Answer, route: RouteSettings, debit: DebitRequest, token: VerifiedToken) -> Answer:
        """The allow with a signed delivery claim in its access-log metadata (route settings refund_on, settle). A
        replayed debit gets none: its record belongs to the attempt that first spent."""
        assert self._keyring is not None
        signed = signed_claim(self._keyring(), route, debit, token)
        if signed is None:
            return answer
        return dataclasses.replace(answer, metadata={**answer.metadata, refund_claims.METADATA_KEY: signed})

    async def _judge_read_only(
        self, token: VerifiedToken, cost: int, request: CheckInput, request_id: str, reply: Reply
    ) -> Decision:
        """Observe mode without debits: what the ledger would say, read (revocation, then the budget), never spent."""
        try:
            revoked = await self._ledger.is_revoked(token.tenant, token.revocation_ids)
            remaining = None if revoked else await self._ledger.remaining(token.tenant, token.buckets)
        except LedgerUnavailable as exc:
            self._logger.error("ledger_unavailable", detail=str(exc), token_id=token.token_id)
            return self._deny(UNAVAILABLE, request_id, token, reply=reply)
        if revoked:
            return self._deny(REVOKED, request_id, token, reply=reply)
        if remaining is not None and remaining < cost:
            exhausted = Denial(402, "budget_exhausted", f"budget cannot pay {cost} credits")
            return self._deny(exhausted, request_id, token, reply=reply, cost=cost, remaining=remaining)
        allow = Allow(self._token_headers(token), charged=0, remaining=remaining)
        return Decision(allow_answer(allow, request.headers), token, 0, remaining)

    def _mcp_body(
        self, route: RouteSettings, request: CheckInput, facts: RequestFacts, request_id: str, token: VerifiedToken
    ) -> Decision | tuple[RequestFacts, int, Reply]:
        """The request's facts, cost and refusal form once the route (and, on MCP routes, the body) is known."""
        cost = self._settings.default_cost if route.cost is None else route.cost
        if route.scopes:
            facts = facts.with_scopes(route.scopes)
        if not route.mcp:
            return facts, cost, Reply()
        try:
            body = mcp.parse(request.body, request.headers.get("content-type", ""))
        except mcp.McpBodyError as exc:
            invalid = Denial(400, "invalid_request", str(exc))
            return self._deny(invalid, request_id, token, reply=Reply(mcp=True, code=exc.code))
        reply = Reply(mcp=True, request=body)
        table = self._settings.pricing.get(route.pricing or "default")
        if table is None:
            self._logger.error("route_config_invalid", detail=f"no pricing table {route.pricing!r}", path=facts.path)
            return self._deny(UNAVAILABLE, request_id, token, reply=reply)
        return facts.with_tools(body.tools), table.total(body), reply

    def _deny(
        self,
        denial: Denial,
        request_id: str,
        token: VerifiedToken | None = None,
        *,
        reply: Reply | None = None,
        headers: tuple[tuple[str, str], ...] = (),
        **extra: Any,
    ) -> Decision:
        answer = deny_answer(
            denial,
            request_id,
            headers=headers,
            extra={k: v for k, v in extra.items() if v is not None},
            token_id=token.token_id if token else None,
            tenant=token.tenant if token else None,
            reply=reply,
        )
        return Decision(answer, token, 0, extra.get("remaining"))

    def _token_headers(self, token: VerifiedToken) -> TokenHeaders:
        """Per token, not per request: keyed by the final signature, so the same bytes, the same grants."""
        headers = self._by_token.get(token.fingerprint)
        if headers is None:
            if len(self._by_token) >= _TOKEN_HEADERS_CACHED:
                self._by_token.clear()
            attributes = {a: v for a in self._settings.attribute_headers if (v := token.attribute(a)) is not None}
            headers = self._by_token[token.fingerprint] = TokenHeaders.of(token.token_id, token.tenant, attributes)
        return headers

    def _record_usage(self, usage: UsageRecorder, request: CheckInput, decision: Decision) -> None:
        token = decision.token
        usage.record(
            tenant=token.tenant if token else None,
            token_id=token.token_id if token else None,
            route=request.path.partition("?")[0],
            method=request.method,
            status=decision.status,
            credits=decision.charged,
            attributes=self._token_headers(token).attributes if token is not None else {},
        )

    def _log_decision(self, request: CheckInput, request_id: str, decision: Decision, started: float) -> None:
        mode = self._settings.decision_log
        if mode == "none" or (mode == "deny" and decision.status == 200):
            return
        token = decision.token
        self._logger.info(
            "decision",
            request_id=request_id,
            method=request.method,
            route=request.path.partition("?")[0],
            status=decision.status,
            error=decision.error,
            token_id=token.token_id if token else None,
            tenant=token.tenant if token else None,
            credits=decision.charged,
            remaining=decision.remaining,
            **({} if decision.enforced else {"enforced": False}),
            latency_us=round((time.perf_counter() - started) * 1e6),
        )
