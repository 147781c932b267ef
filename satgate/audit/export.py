"""An exported chain, checked without the store: each record carries its `prev_hash` and `hash`, so every record
proves its own content, and consecutive records prove nothing between them was removed. A filtered export (one
tenant's records) proves the first but not the second: other tenants' records sit between its links."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from satgate.audit.chain import GENESIS, chain_hash

ENVELOPE = ("seq", "prev_hash", "hash")  # added around the hashed record by an export


def exported(seq: Any, record: dict[str, Any], prev_hash: str, digest: str) -> dict[str, Any]:
    return {"seq": seq, **record, "prev_hash": prev_hash, "hash": digest}


class ExportFormatError(ValueError):
    pass


@dataclass(frozen=True)
class ExportCheck:
    records: int
    edited_at: Any | None  # the first record whose content does not hash to its `hash`
    unlinked_at: Any | None  # the first record that does not follow the one before it (or genesis)
    head: str | None

    @property
    def each_record_intact(self) -> bool:
        return self.edited_at is None

    @property
    def complete(self) -> bool:
        """A whole chain from genesis with nothing removed (cut from the end: compare `head` with a kept copy)."""
        return self.edited_at is None and self.unlinked_at is None


def check_export(records: Iterable[dict[str, Any]]) -> ExportCheck:
    count, edited, unlinked, previous = 0, None, None, GENESIS
    for line_number, entry in enumerate(records, 1):
        missing = [name for name in ENVELOPE if name not in entry]
        if missing:
            raise ExportFormatError(
                f"record {line_number} has no {', '.join(missing)}: export it again with `satgate audit export`"
            )
        record = {k: v for k, v in entry.items() if k not in ENVELOPE}
        if edited is None and chain_hash(entry["prev_hash"], record) != entry["hash"]:
            edited = entry["seq"]
        if unlinked is None and entry["prev_hash"] != previous:
            unlinked = entry["seq"]
        previous = entry["hash"]
        count += 1
    return ExportCheck(count, edited, unlinked, previous if count else None)
