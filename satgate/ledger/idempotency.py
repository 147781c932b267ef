"""Idempotency keys bound to the request they charged (SPEC v2.1, Ledger / Idempotency).

A retry of the same request (same token, `x-request-id`, method, path, host, cost and MCP body) finds the
record and is not charged again; reusing the id for any other request yields another key, so that request is
judged and debited as new — never answered from the record."""

from __future__ import annotations

import hashlib


def idempotency_key(
    fingerprint: str,
    request_id: str,
    *,
    method: str,
    path: str,
    host: str,
    cost: int,
    body: bytes | None = None,
) -> str | None:
    """None when the request carries no id. The digest keeps keys short whatever the client sends."""
    if not request_id:
        return None
    digest = hashlib.blake2b(digest_size=16)
    for part in (request_id, method, path, host, str(cost)):
        digest.update(part.encode("utf-8", "surrogateescape"))
        digest.update(b"\x00")
    if body is not None:
        digest.update(hashlib.sha256(body).digest())
    return f"{fingerprint}:{digest.hexdigest()}"
