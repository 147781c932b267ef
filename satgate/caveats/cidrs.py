from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import ClassVar, Self

from satgate.caveats.base import Denial, RequestFacts, caveat_failed
from satgate.caveats.grammar import CaveatSyntaxError, split_list

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True, slots=True)
class Cidrs:
    """The source address Envoy saw (after its XFF / trusted-hops handling) must be in one network."""

    key: ClassVar[str] = "cidrs"
    networks: tuple[Network, ...]

    @classmethod
    def parse(cls, value: str) -> Self:
        try:
            return cls(networks=tuple(ipaddress.ip_network(e, strict=True) for e in split_list(value, cls.key)))
        except ValueError as exc:
            raise CaveatSyntaxError(f"caveat 'cidrs': {exc}") from exc

    def check(self, facts: RequestFacts) -> Denial | None:
        try:
            address = ipaddress.ip_address(facts.source_ip)
        except ValueError:
            return caveat_failed(self.key, "source address is unknown")
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        if any(address in network for network in self.networks):
            return None
        return caveat_failed(self.key, f"source address {address} is not allowed by this token")
