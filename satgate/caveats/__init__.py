"""First-party caveats, one small typed unit per key (SPEC: Caveats). Unknown keys fail closed."""

from __future__ import annotations

from collections.abc import Collection

from satgate.caveats.attribute import Attribute
from satgate.caveats.base import Caveat, Denial, RequestFacts
from satgate.caveats.budget import Budget
from satgate.caveats.budget_bucket import BudgetBucket
from satgate.caveats.budget_window import BudgetWindow
from satgate.caveats.cidrs import Cidrs
from satgate.caveats.delegation import Delegation
from satgate.caveats.expires import Expires
from satgate.caveats.grammar import CaveatSyntaxError, format_caveat, split_caveat
from satgate.caveats.hosts import Hosts
from satgate.caveats.label import Label
from satgate.caveats.max_delegation_depth import MaxDelegationDepth
from satgate.caveats.methods import Methods
from satgate.caveats.not_before import NotBefore
from satgate.caveats.paths import Paths
from satgate.caveats.scope import Scope
from satgate.caveats.seal import Seal
from satgate.caveats.tools import Tools

BUILTIN: dict[str, type[Caveat]] = {
    cls.key: cls
    for cls in (
        Expires,
        NotBefore,
        Scope,
        Budget,
        BudgetWindow,
        BudgetBucket,
        Delegation,
        MaxDelegationDepth,
        Methods,
        Paths,
        Hosts,
        Tools,
        Cidrs,
        Label,
        Seal,
    )
}

ParsedCaveat = Caveat | Attribute


def parse_caveat(raw: bytes, attribute_keys: Collection[str] = ()) -> ParsedCaveat:
    key, value = split_caveat(raw)
    unit = BUILTIN.get(key)
    if unit is not None:
        return unit.parse(value)
    if key in attribute_keys:
        return Attribute(key=key, value=value)
    raise CaveatSyntaxError(f"unknown caveat {key!r}")


__all__ = [
    "BUILTIN",
    "Attribute",
    "Budget",
    "BudgetBucket",
    "BudgetWindow",
    "Caveat",
    "CaveatSyntaxError",
    "Cidrs",
    "Delegation",
    "Denial",
    "Expires",
    "Hosts",
    "Label",
    "MaxDelegationDepth",
    "Methods",
    "NotBefore",
    "ParsedCaveat",
    "Paths",
    "RequestFacts",
    "Scope",
    "Seal",
    "Tools",
    "format_caveat",
    "parse_caveat",
    "split_caveat",
]
