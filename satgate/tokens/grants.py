"""Grants (SPEC v2.1): a required scope, a required attribute and an admin role count only when the issuer set
them, i.e. in the caveats before the seal. Caveats a holder appends after it can only restrict."""

from __future__ import annotations

from dataclasses import dataclass

from satgate.caveats import Attribute, Scope
from satgate.caveats.scope import scope_matches


@dataclass(frozen=True, slots=True)
class Grants:
    """The issuer's own scope and attribute caveats; empty for a token without a seal (it holds no grants)."""

    scopes: tuple[Scope, ...] = ()
    attributes: tuple[Attribute, ...] = ()

    def grant_scope(self, scope: str) -> bool:
        """Some sealed scope caveat matches `scope` (every scope caveat permitting it is judged apart)."""
        return any(caveat.permits(scope) for caveat in self.scopes)

    def grant_role(self, role: str) -> bool:
        """Roles need an explicit pattern: a sealed `*` grants every route scope but never an admin role."""
        return any(p != "*" and scope_matches(p, role) for caveat in self.scopes for p in caveat.patterns)

    def attribute(self, key: str) -> str | None:
        """The issuer's value of a declared attribute, or None when the issuer set none."""
        return next((a.value for a in self.attributes if a.key == key), None)


NO_GRANTS = Grants()
