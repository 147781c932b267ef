"""What Envoy's access-log stream does to a debit once the upstream answered. Each entry of a request on a
`refund_on` or `settle` route carries the signed claim its allow put in the dynamic metadata.

- Pay for delivered requests only (`refund_on: 5xx,reset`): when the upstream answered 5xx (`5xx`) or never
  answered — the connection failed or was reset (`reset`) — the debit is refunded, exactly once (the ledger refunds
  a debit id once: a duplicate entry, a stream resent after a reconnect or a second replica refunds nothing),
  audited `debit_refunded` and recorded in usage as negative credits. It takes precedence over settling.
- Settle to the real cost (`settle: response_header`): the upstream's `x-satgate-cost` response header, which
  Envoy moved into the metadata (and off the client's response), settles the reserved debit once: the difference
  refunded, or the excess charged up to what every bucket can still pay — the rest recorded as overshoot. Audited
  `debit_settled` when the charge changed; recorded in usage as the credits it moved. No header, an unparsable one,
  or no entry within the idempotency window: the reservation stands."""

from __future__ import annotations

import re
from collections.abc import Callable

import structlog
from envoy.config.core.v3.base_pb2 import RequestMethod
from envoy.data.accesslog.v3.accesslog_pb2 import HTTPAccessLogEntry

from authz_server.responses import LOG_HEADER_PREFIX
from satgate.audit import AuditEvent, AuditLog
from satgate.caveats.budget import MAX_BUDGET
from satgate.keyring import Keyring
from satgate.ledger import DebitRequest, Ledger, LedgerUnavailable, refund_claims, refunds
from satgate.ledger.base import Bucket, Crossing
from satgate.ledger.refund_claims import RefundClaim
from satgate.usage import UsageRecorder

EXT_AUTHZ_NAMESPACE = "envoy.filters.http.ext_authz"  # where Envoy keeps the metadata ext_authz answered
# Where the shipped Envoy configs' header_to_metadata filter puts the upstream's x-satgate-cost response header.
COST_NAMESPACE, COST_KEY = "satgate", "cost"
_COST_RE = re.compile(r"0|[1-9][0-9]{0,15}")
# Response flags of a request the upstream never answered: it was not reached, or the exchange broke off.
NOT_DELIVERED = (
    "upstream_connection_failure",
    "upstream_remote_reset",
    "upstream_connection_termination",
    "no_healthy_upstream",
    "upstream_overflow",
    "upstream_protocol_error",
)


def refund_reason(entry: HTTPAccessLogEntry, refund_on: tuple[str, ...]) -> str | None:
    """Why this request is refunded under `refund_on`, or None: it was delivered (or is not over yet)."""
    common = entry.common_properties
    if common.intermediate_log_entry:
        return None
    if "reset" in refund_on and any(getattr(common.response_flags, flag) for flag in NOT_DELIVERED):
        return "upstream_reset"
    code = entry.response.response_code.value
    if "5xx" in refund_on and 500 <= code <= 599:
        return "upstream_5xx"
    return None


def actual_cost(entry: HTTPAccessLogEntry) -> int | None:
    """The cost the upstream reported (x-satgate-cost), or None: absent, or not an integer in 0..10^15."""
    metadata = entry.common_properties.metadata.filter_metadata
    if COST_NAMESPACE not in metadata or COST_KEY not in metadata[COST_NAMESPACE].fields:
        return None
    field = metadata[COST_NAMESPACE].fields[COST_KEY]
    text = field.string_value if field.HasField("string_value") else ""
    if not _COST_RE.fullmatch(text) or int(text) > MAX_BUDGET:
        return None
    return int(text)


def claim_of(entry: HTTPAccessLogEntry, keyring: Keyring) -> tuple[RefundClaim | None, bool]:
    """(the verified claim or None, whether the entry carried a claim at all)."""
    metadata = entry.common_properties.metadata.filter_metadata
    if EXT_AUTHZ_NAMESPACE not in metadata:
        return None, False
    fields = metadata[EXT_AUTHZ_NAMESPACE].fields
    # gRPC transport: the key itself; HTTP transport: the response header Envoy copied (dynamic_metadata_from_headers)
    field = fields.get(refund_claims.METADATA_KEY) or fields.get(LOG_HEADER_PREFIX + refund_claims.METADATA_KEY)
    if field is None:
        return None, False
    return refund_claims.verify(keyring, field.string_value), True


# Told of the thresholds a settlement's excess charge crossed: tenant, token id, crossings, buckets, remaining.
CrossedHook = Callable[[str, str, tuple[Crossing, ...], tuple[Bucket, ...], int | None], None]


class DeliveryRefunds:
    def __init__(
        self,
        ledger: Ledger,
        keyring: Callable[[], Keyring],
        *,
        audit: AuditLog | None = None,
        usage: UsageRecorder | None = None,
        thresholds: tuple[int, ...] = (),
        on_crossed: CrossedHook | None = None,
    ) -> None:
        self._thresholds = thresholds
        self._on_crossed = on_crossed  # budget_threshold events for an excess a settlement charged
        self._ledger = ledger
        self._keyring = keyring
        self._audit = audit
        self._usage = usage
        self._logger = structlog.get_logger("satgate.authz")

    async def settle(self, entry: HTTPAccessLogEntry) -> int:
        """The credits this entry gave back: refunded, or reserved less settled (negative: an excess charged);
        0 when it changed nothing (delivered, settled or refunded already, no cost reported)."""
        claim, carried = claim_of(entry, self._keyring())
        if claim is None:
            if carried:  # signed by a key no longer held, or not by us at all
                self._logger.warning("refund_claim_invalid", request_id=entry.request.request_id)
            return 0
        request = DebitRequest(
            claim.tenant,
            (),
            claim.buckets,
            claim.reserved,
            debit_id=claim.debit_id,
            attempt=claim.attempt,
            checked_at=claim.checked_at or None,
            thresholds=self._thresholds,
        )
        reason = refund_reason(entry, claim.refund_on)
        if reason is not None:
            credits = await refunds.pay(self._ledger, request, reason)  # retried while the store is down
            if credits:
                await self._record(entry, claim, reason, credits)
            return credits
        if not claim.settle or entry.common_properties.intermediate_log_entry:
            return 0
        actual = actual_cost(entry)
        if actual is None:
            return 0  # the reservation stands
        return await self._settle(entry, claim, request, actual)

    async def _settle(self, entry: HTTPAccessLogEntry, claim: RefundClaim, request: DebitRequest, actual: int) -> int:
        try:
            result = await self._ledger.settle(request, actual)
        except LedgerUnavailable as exc:  # Envoy does not resend: the reservation stands, and the log says so
            self._logger.error("settle_failed", tenant=claim.tenant, token_id=claim.token_id, detail=str(exc))
            return 0
        if not result.settled:
            return 0
        if result.crossed and self._on_crossed is not None:
            self._on_crossed(claim.tenant, claim.token_id, result.crossed, claim.buckets, result.remaining)
        moved = result.charged - claim.reserved
        if moved or result.overshoot:
            await self._record_settlement(entry, claim, actual, result.charged, result.overshoot)
        return -moved

    async def _record_settlement(
        self, entry: HTTPAccessLogEntry, claim: RefundClaim, actual: int, charged: int, overshoot: int
    ) -> None:
        status = entry.response.response_code.value
        request_id = entry.request.request_id
        details = {
            "reserved": claim.reserved,
            "actual": actual,
            "charged": charged,
            "overshoot": overshoot,
            "status": status,
            "request_id": request_id[:128],
        }
        self._logger.info("debit_settled", tenant=claim.tenant, token_id=claim.token_id, **details)
        if charged != claim.reserved:
            self._usage_moved(entry, claim, charged - claim.reserved)
        event = AuditEvent(type="debit_settled", tenant=claim.tenant, token_id=claim.token_id, details=details)
        await self._append(event)

    def _usage_moved(self, entry: HTTPAccessLogEntry, claim: RefundClaim, credits: int) -> None:
        """A usage row for the credits a refund or settlement moved (negative: given back)."""
        if self._usage is None:
            return
        self._usage.record(
            tenant=claim.tenant,
            token_id=claim.token_id,
            route=entry.request.path.partition("?")[0],
            method=RequestMethod.Name(entry.request.request_method),
            status=entry.response.response_code.value,
            credits=credits,
            attributes={},
        )

    async def _append(self, event: AuditEvent) -> None:
        if self._audit is None:
            return
        try:
            await self._audit.append(event)
        except Exception as exc:  # the ledger's change stands; its record is what is lost
            self._logger.error("audit_write_failed", event=event.type, detail=str(exc))

    async def _record(self, entry: HTTPAccessLogEntry, claim: RefundClaim, reason: str, credits: int) -> None:
        status = entry.response.response_code.value
        request_id = entry.request.request_id
        self._logger.info(
            "debit_refunded",
            reason=reason,
            tenant=claim.tenant,
            token_id=claim.token_id,
            credits=credits,
            status=status,
            request_id=request_id,
        )
        self._usage_moved(entry, claim, -credits)
        event = AuditEvent(
            type="debit_refunded",
            tenant=claim.tenant,
            token_id=claim.token_id,
            details={"credits": credits, "reason": reason, "status": status, "request_id": request_id[:128]},
        )
        await self._append(event)
