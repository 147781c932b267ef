"""The libmacaroons HMAC-SHA256 signature chain (SPEC: Tokens / Signature chain)."""

from __future__ import annotations

import functools
import hashlib
import hmac
from collections.abc import Sequence

_KEY_GENERATOR = b"macaroons-key-generator"


@functools.lru_cache(maxsize=65536)  # per tenant root key, as the keyring's derivations: one HMAC less per verify
def derive_signing_key(root_key: bytes) -> bytes:
    return hmac.digest(_KEY_GENERATOR, root_key, hashlib.sha256)


def chain_signatures(root_key: bytes, identifier: bytes, caveats: Sequence[bytes]) -> list[bytes]:
    """[s0, s1, ..., sn]: s0 = HMAC(k, identifier), s_i = HMAC(s_{i-1}, caveat_i)."""
    sig = hmac.digest(derive_signing_key(root_key), identifier, hashlib.sha256)
    sigs = [sig]
    for caveat in caveats:
        sig = hmac.digest(sig, caveat, hashlib.sha256)
        sigs.append(sig)
    return sigs


def extend_signature(signature: bytes, caveat: bytes) -> bytes:
    """Attenuation needs only the current signature, never the root key."""
    return hmac.digest(signature, caveat, hashlib.sha256)


def signatures_match(expected: bytes, presented: bytes) -> bool:
    return hmac.compare_digest(expected, presented)
