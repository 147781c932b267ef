"""The Mint's Prometheus metrics."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram


class MintMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.exchanges = Counter(
            "satgate_mint_exchanges",
            "Identity exchanges by credential kind (jwt, aws) and outcome",
            ["provider", "outcome"],
            registry=self.registry,
        )
        self.jwks_fetches = Counter(
            "satgate_mint_jwks_fetches", "JWKS and discovery fetches by result", ["result"], registry=self.registry
        )
        self.latency = Histogram(
            "satgate_mint_exchange_seconds",
            "Exchange latency",
            ["provider"],
            registry=self.registry,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
        )
