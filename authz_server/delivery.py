"""Pay for delivered requests only (route setting `refund_on: 5xx,reset`): each entry of Envoy's access-log stream
for a refundable request carries the signed refund claim its allow put in the dynamic metadata; when the upstream
answered 5xx (`5xx`) or never answered — the connection failed or was reset (`reset`) — the debit is refunded,
exactly once (the ledger refunds a debit id once: a duplicate entry, a stream resent after a reconnect or a second
replica refunds nothing), audited `debit_refunded` and recorded in usage as negative credits."""

from __future__ import annotations

from collections.abc import Callable

import structlog
from envoy.config.core.v3.base_pb2 import RequestMethod
from envoy.data.accesslog.v3.accesslog_pb2 import HTTPAccessLogEntry

from authz_server.responses import LOG_HEADER_PREFIX
from satgate.audit import AuditEvent, AuditLog
from satgate.keyring import Keyring
from satgate.ledger import Bucket, DebitRequest, Ledger, refund_claims, refunds
from satgate.ledger.refund_claims import RefundClaim
from satgate.usage import UsageRecorder

EXT_AUTHZ_NAMESPACE = "envoy.filters.http.ext_authz"  # where Envoy keeps the metadata ext_authz answered
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


class DeliveryRefunds:
    def __init__(
        self,
        ledger: Ledger,
        keyring: Callable[[], Keyring],
        *,
        audit: AuditLog | None = None,
        usage: UsageRecorder | None = None,
    ) -> None:
        self._ledger = ledger
        self._keyring = keyring
        self._audit = audit
        self._usage = usage
        self._logger = structlog.get_logger("satgate.authz")

    async def settle(self, entry: HTTPAccessLogEntry) -> int:
        """The credits this entry refunded (0: nothing to refund, or refunded already)."""
        claim, carried = claim_of(entry, self._keyring())
        if claim is None:
            if carried:  # signed by a key no longer held, or not by us at all
                self._logger.warning("refund_claim_invalid", request_id=entry.request.request_id)
            return 0
        reason = refund_reason(entry, claim.refund_on)
        if reason is None:
            return 0
        buckets = tuple(Bucket(bucket_id, 0) for bucket_id in claim.bucket_ids)
        request = DebitRequest(claim.tenant, (), buckets, 0, debit_id=claim.debit_id, attempt=claim.attempt)
        credits = await refunds.pay(self._ledger, request, reason)  # retried while the store is down
        if credits:
            await self._record(entry, claim, reason, credits)
        return credits

    async def _record(self, entry: HTTPAccessLogEntry, claim: RefundClaim, reason: str, credits: int) -> None:
        status = entry.response.response_code.value
        request_id, path = entry.request.request_id, entry.request.path.partition("?")[0]
        self._logger.info(
            "debit_refunded",
            reason=reason,
            tenant=claim.tenant,
            token_id=claim.token_id,
            credits=credits,
            status=status,
            request_id=request_id,
        )
        if self._usage is not None:
            method = RequestMethod.Name(entry.request.request_method)
            self._usage.record(
                tenant=claim.tenant,
                token_id=claim.token_id,
                route=path,
                method=method,
                status=status,
                credits=-credits,
                attributes={},
            )
        if self._audit is not None:
            event = AuditEvent(
                type="debit_refunded",
                tenant=claim.tenant,
                token_id=claim.token_id,
                details={"credits": credits, "reason": reason, "status": status, "request_id": request_id[:128]},
            )
            try:
                await self._audit.append(event)
            except Exception as exc:  # the refund stands; its record is what is lost
                self._logger.error("audit_write_failed", event="debit_refunded", detail=str(exc))
