"""Token identifier `sg1:<tenant>:<kid>:<token_id>` (SPEC: Tokens)."""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass

TENANT_RE = re.compile(r"[a-z0-9][a-z0-9-]{0,62}")
_IDENTIFIER_RE = re.compile(r"sg1:([a-z0-9][a-z0-9-]{0,62}):([a-z0-9-]{1,32}):([0-9a-f]{32})")


class IdentifierError(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class TokenIdentifier:
    tenant: str
    kid: str
    token_id: str

    def encode(self) -> bytes:
        return f"sg1:{self.tenant}:{self.kid}:{self.token_id}".encode()

    @classmethod
    def parse(cls, raw: bytes) -> TokenIdentifier:
        try:
            text = raw.decode("ascii")
        except UnicodeDecodeError as exc:
            raise IdentifierError("identifier is not ASCII") from exc
        match = _IDENTIFIER_RE.fullmatch(text)
        if match is None:
            raise IdentifierError("identifier is not sg1:<tenant>:<kid>:<token_id>")
        return cls(*match.groups())

    @classmethod
    def new(cls, tenant: str, kid: str) -> TokenIdentifier:
        if not TENANT_RE.fullmatch(tenant):
            raise IdentifierError(f"tenant {tenant!r} must match [a-z0-9][a-z0-9-]{{0,62}}")
        return cls(tenant=tenant, kid=kid, token_id=secrets.token_hex(16))
