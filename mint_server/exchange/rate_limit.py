"""Exchange rate limiting per running workload (SPEC: Mint — 429 rate limited)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from mint_server.identity.base import Identity


@dataclass
class _Bucket:
    tokens: float
    updated: float


@dataclass
class RateLimiter:
    """Token bucket per workload: `per_minute` sustained, the same as burst."""

    per_minute: int
    clock: Any = time.monotonic
    _buckets: dict[tuple[str, str], _Bucket] = field(default_factory=dict)

    def wait(self, key: tuple[str, str]) -> float:
        """0 when an exchange is allowed now (and counted); else the seconds until one would be."""
        if self.per_minute <= 0:
            return 0.0
        now = self.clock()
        bucket = self._buckets.get(key)
        if bucket is None:
            if len(self._buckets) > 100_000:  # bounded memory: forget everyone, briefly generous
                self._buckets.clear()
            bucket = self._buckets[key] = _Bucket(float(self.per_minute), now)
        bucket.tokens = min(self.per_minute, bucket.tokens + (now - bucket.updated) * self.per_minute / 60)
        bucket.updated = now
        if bucket.tokens < 1:
            return (1 - bucket.tokens) * 60 / self.per_minute
        bucket.tokens -= 1
        return 0.0


def workload_instance(identity: Identity) -> str:
    """What one running workload is, so that many replicas of one identity starting together are not one
    client: a pod (its uid), a CI run (run id and attempt), an AWS role session; else the identity itself."""
    claims = identity.claims
    k8s = claims.get("kubernetes.io")
    pod = k8s.get("pod") if isinstance(k8s, dict) else None
    if isinstance(pod, dict) and pod.get("uid"):
        return f"{identity.subject}#pod:{pod['uid']}"
    if claims.get("run_id") is not None:
        return f"{identity.subject}#run:{claims['run_id']}.{claims.get('run_attempt', '')}"
    if identity.provider == "aws" and claims.get("session"):
        return f"{identity.subject}#session:{claims['session']}"
    return identity.subject
