"""Idempotency keys bound to the request they charged (SPEC v2.1, Ledger / Idempotency).

A retry of the same request (same token, `x-request-id`, method, path, host, cost and MCP body) finds the
record and is not charged again; reusing the id for any other request yields another key, so that request is
judged and debited as new — never answered from the record."""

from __future__ import annotations

import hashlib
import itertools
import os


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
    # Each part NUL-terminated (no part can hold a NUL: HTTP forbids it in headers, paths and methods).
    text = f"{request_id}\0{method}\0{path}\0{host}\0{cost}\0"
    try:  # surrogateescape: the bytes a header arrived as, the encoding keys were always recorded with
        encoded = text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:  # a lone surrogate no decoding produced (U+D800…): still a key, never an error
        encoded = text.encode("utf-8", "surrogatepass")
    digest = hashlib.blake2b(encoded, digest_size=16)
    if body is not None:
        digest.update(hashlib.sha256(body).digest())
    return f"{fingerprint}:{digest.hexdigest()}"


class UniqueIds:
    """Ids unique across processes and restarts without a syscall each: a random per-process prefix (fresh
    in a forked child) and a counter. What debits use for `attempt`, and for debit ids of requests without one."""

    def __init__(self) -> None:
        self._reset()
        os.register_at_fork(after_in_child=self._reset)

    def _reset(self) -> None:
        self._prefix = os.urandom(8).hex()
        self._counter = itertools.count()

    def next(self) -> str:
        return f"{self._prefix}{next(self._counter):x}"


unique_ids = UniqueIds()
