"""A `config_loaded` audit record each time a Mint starts (SPEC: Audit — config updates): which settings it runs
with, as a digest (and the non-secret facts an auditor asks first), so a changed deployment shows in the chain as
a new digest. Secrets never enter it: URLs are shown redacted, webhook secrets left out before hashing."""

from __future__ import annotations

import hashlib
import json
import os
from typing import Any

from satgate.audit import AuditEvent
from satgate.config import Config
from satgate.urls import display_url


def _without_secrets(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_secrets(v) for k, v in value.items() if k not in ("secret", "secret_env")}
    if isinstance(value, list):
        return [_without_secrets(v) for v in value]
    return value


def config_loaded(config: Config) -> AuditEvent:
    settings = _without_secrets(config.model_dump(mode="json"))
    settings["ledger"], settings["control_plane"] = display_url(config.ledger), display_url(config.control_plane)
    digest = hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()
    return AuditEvent(
        type="config_loaded",
        actor="mint",
        details={
            "config_sha256": digest,
            "ledger": settings["ledger"],
            "control_plane": settings["control_plane"],
            "tls": config.mint.tls is not None,
            "pid": os.getpid(),
        },
    )
