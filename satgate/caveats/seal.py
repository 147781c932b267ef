"""The issuer's seal (SPEC v2.1, Grants and the issuer seal): the caveats before it are the issuer's own."""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass
from typing import ClassVar, Self

from satgate.caveats.base import Denial, RequestFacts
from satgate.caveats.grammar import CaveatSyntaxError

_SEAL_RE = re.compile(r"[0-9a-f]{32}")
_SEAL_HEX = 32


def seal_value(seal_key: bytes, signature_before: bytes) -> str:
    """First 32 hex chars of HMAC-SHA256(seal key, s_{i-1})."""
    return hmac.digest(seal_key, signature_before, hashlib.sha256).hex()[:_SEAL_HEX]


@dataclass(frozen=True, slots=True)
class Seal:
    """Holds on its own once the verifier has checked its value against the chain (a wrong or second seal
    makes the token invalid); what it marks is which caveats may grant."""

    key: ClassVar[str] = "seal"
    value: str

    @classmethod
    def parse(cls, value: str) -> Self:
        if not _SEAL_RE.fullmatch(value):
            raise CaveatSyntaxError(f"caveat 'seal': {value!r} is not 32 lowercase hex")
        return cls(value=value)

    def seals(self, seal_key: bytes, signature_before: bytes) -> bool:
        return hmac.compare_digest(self.value, seal_value(seal_key, signature_before))

    def check(self, facts: RequestFacts) -> Denial | None:
        return None
