"""JWT identities (Kubernetes service accounts, GitHub Actions, any OIDC IdP) verified with pyjwt against
keys from the issuer's own discovery document or a configured jwks_uri (SPEC: Mint / JWTs)."""

from __future__ import annotations

import asyncio
import hashlib
import json
import ssl
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import jwt
import structlog

from mint_server.identity.base import IdentityError

ASYMMETRIC_ALGORITHMS = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
)
REQUIRED_CLAIMS = ["exp", "iat", "iss", "aud"]
LEEWAY_SECONDS = 60
REFETCH_INTERVAL_SECONDS = 30.0
MAX_JWT_CHARS = 16 * 1024
_MAX_DOCUMENT_BYTES = 512 * 1024
_MAX_KEY_SOURCES = 1024

log = structlog.get_logger("satgate.mint")


@dataclass(frozen=True)
class SigningKey:
    jwk: jwt.PyJWK
    declared_alg: str | None  # the JWK's own "alg", when it names one


@dataclass(frozen=True)
class FetchOptions:
    """How to reach an issuer that is not public: the in-cluster Kubernetes API server serves discovery and JWKS
    only to authenticated callers, under the cluster's own CA. Both files are read at each fetch (they rotate)."""

    ca_file: Path | None = None  # trust only this CA: the bearer token goes nowhere else
    bearer_token_file: Path | None = None

    def ssl_context(self) -> ssl.SSLContext | bool:
        return ssl.create_default_context(cafile=str(self.ca_file)) if self.ca_file else True

    def headers(self) -> dict[str, str]:
        if self.bearer_token_file is None:
            return {}
        return {"Authorization": f"Bearer {self.bearer_token_file.read_text().strip()}"}


PUBLIC = FetchOptions()


@dataclass
class _IssuerKeys:
    jwks_uri: str | None = None
    keys: dict[str | None, SigningKey] = field(default_factory=dict)
    fetched_at: float | None = None
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


class JwksCache:
    """Signing keys per issuer. An unknown kid refetches at most once per REFETCH_INTERVAL per issuer, so a
    flood of made-up kids costs the IdP nothing; fetches are single-flight and never block the loop."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        *,
        refetch_interval: float = REFETCH_INTERVAL_SECONDS,
        timeout: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
        on_fetch: Callable[[str, bool], None] | None = None,
    ) -> None:
        self._session = session
        self._refetch_interval = refetch_interval
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._clock = clock
        # Keyed by where the keys come from, not just the issuer: a policy reload that points an issuer at
        # another jwks_uri (or CA, or token) must not keep trusting the keys fetched from the old place.
        self._issuers: dict[tuple[str, str | None, FetchOptions], _IssuerKeys] = {}
        self._on_fetch = on_fetch

    async def key_for(
        self, issuer: str, jwks_uri: str | None, kid: str | None, fetch: FetchOptions = PUBLIC
    ) -> SigningKey:
        state = self._issuers.get((issuer, jwks_uri, fetch))
        if state is None:
            if len(self._issuers) >= _MAX_KEY_SOURCES:  # bounded: sources no policy names any more go first
                self._issuers.pop(next(iter(self._issuers)))
            state = self._issuers[(issuer, jwks_uri, fetch)] = _IssuerKeys(jwks_uri=jwks_uri)
        key = self._lookup(state, kid)
        if key is None and self._may_fetch(state):
            async with state.lock:
                if self._lookup(state, kid) is None and self._may_fetch(state):
                    await self._refresh(issuer, state, fetch)
            key = self._lookup(state, kid)
        if key is None:
            raise IdentityError("token signing key is not one of the issuer's keys")
        return key

    def _may_fetch(self, state: _IssuerKeys) -> bool:
        return state.fetched_at is None or self._clock() - state.fetched_at >= self._refetch_interval

    @staticmethod
    def _lookup(state: _IssuerKeys, kid: str | None) -> SigningKey | None:
        if kid is None and len(state.keys) == 1:
            return next(iter(state.keys.values()))
        return state.keys.get(kid)

    async def _refresh(self, issuer: str, state: _IssuerKeys, fetch: FetchOptions) -> None:
        state.fetched_at = self._clock()  # also on failure: a dead IdP is not hammered either
        ok = False
        try:
            if state.jwks_uri is None:
                discovery = await self._get_json(issuer.rstrip("/") + "/.well-known/openid-configuration", fetch)
                if discovery.get("issuer") != issuer:
                    raise IdentityError("issuer's discovery document names a different issuer")
                if not isinstance(discovery.get("jwks_uri"), str):
                    raise IdentityError("issuer's discovery document has no jwks_uri")
                state.jwks_uri = discovery["jwks_uri"]
            document = await self._get_json(state.jwks_uri, fetch)
            state.keys = _signing_keys(document.get("keys"))
            ok = True
            log.info("jwks_refreshed", issuer=issuer, keys=len(state.keys))
        except (aiohttp.ClientError, TimeoutError, ValueError, OSError) as exc:  # OSError: unreadable CA/token
            log.warning("jwks_fetch_failed", issuer=issuer, detail=str(exc))
        finally:
            if self._on_fetch is not None:
                self._on_fetch(issuer, ok)

    async def _get_json(self, url: str, fetch: FetchOptions) -> dict[str, Any]:
        async with self._session.get(
            url, timeout=self._timeout, allow_redirects=False, ssl=fetch.ssl_context(), headers=fetch.headers()
        ) as response:
            if response.status != 200:
                raise ValueError(f"GET {url}: HTTP {response.status}")
            body = await response.content.read(_MAX_DOCUMENT_BYTES + 1)
        if len(body) > _MAX_DOCUMENT_BYTES:
            raise ValueError(f"GET {url}: document too large")
        document = json.loads(body)
        if not isinstance(document, dict):
            raise ValueError(f"GET {url}: not a JSON object")
        return document


def _signing_keys(keys: object) -> dict[str | None, SigningKey]:
    """Asymmetric signature keys only: an `oct` key in a JWKS could otherwise verify HS256 forgeries."""
    usable: dict[str | None, SigningKey] = {}
    for entry in keys if isinstance(keys, list) else ():
        if not isinstance(entry, dict) or entry.get("kty") == "oct" or entry.get("use", "sig") != "sig":
            continue
        if entry.get("alg") is not None and entry["alg"] not in ASYMMETRIC_ALGORITHMS:
            continue
        try:
            usable[entry.get("kid")] = SigningKey(jwt.PyJWK(entry), entry.get("alg"))
        except (jwt.PyJWKError, jwt.InvalidKeyError, ValueError, KeyError, TypeError):
            continue
    return usable


@dataclass(frozen=True)
class UnverifiedJwt:
    header: Mapping[str, Any]
    issuer: str


def peek(token: str) -> UnverifiedJwt:
    """Header and issuer, to choose the key set. Nothing here is trusted until verify()."""
    if len(token) > MAX_JWT_CHARS:
        raise IdentityError("credential is too large")
    try:
        header = jwt.get_unverified_header(token)
        claims = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError:
        raise IdentityError("credential is not a JWT") from None
    alg, kid = header.get("alg"), header.get("kid")
    if not isinstance(alg, str) or alg not in ASYMMETRIC_ALGORITHMS:
        shown = alg if isinstance(alg, str) else type(alg).__name__
        raise IdentityError(f"JWT algorithm {shown[:32]!r} is not accepted (asymmetric algorithms only)")
    if kid is not None and not isinstance(kid, str):
        raise IdentityError("JWT header kid must be a string")
    issuer = claims.get("iss")
    if not isinstance(issuer, str):
        raise IdentityError("JWT has no issuer")
    return UnverifiedJwt(header=header, issuer=issuer)


def verify(token: str, key: SigningKey, peeked: UnverifiedJwt, audiences: Iterable[str]) -> dict[str, Any]:
    """Signature, exp/iat/nbf with 60 s leeway, iss and aud. jku/x5u/jwk headers are never consulted:
    the key always comes from our own fetch of the issuer's JWKS."""
    alg = peeked.header["alg"]
    if key.declared_alg is not None and key.declared_alg != alg:
        raise IdentityError("JWT algorithm does not match the issuer's key")
    # Otherwise pyjwt refuses a key of the wrong type for `alg` (an EC key for RS256, say).
    try:
        return jwt.decode(
            token,
            key.jwk.key,
            algorithms=[alg],
            audience=list(audiences),
            issuer=peeked.issuer,
            leeway=LEEWAY_SECONDS,
            options={"require": REQUIRED_CLAIMS},
        )
    except jwt.ExpiredSignatureError:
        raise IdentityError("JWT has expired") from None
    except jwt.ImmatureSignatureError:
        raise IdentityError("JWT is not valid yet") from None
    except jwt.InvalidAudienceError:
        raise IdentityError("JWT audience is not accepted") from None
    except jwt.InvalidIssuerError:
        raise IdentityError("JWT issuer is not accepted") from None
    except jwt.MissingRequiredClaimError as exc:
        raise IdentityError(f"JWT lacks the required {exc.claim!r} claim") from None
    except jwt.PyJWTError:
        raise IdentityError("JWT signature does not verify") from None


def replay_key(token: str, issuer: str, claims: Mapping[str, Any]) -> tuple[bytes, float]:
    """A verified JWT's one-time key — its issuer and `jti`, or without one a hash of what was signed (header and
    payload as sent: changing them breaks the signature) — and until when it could still be presented (its exp
    plus the leeway). Never the text of the signature: padding appended to it, or (ECDSA) another valid signature
    of the same content, would make the same JWT new again."""
    jti = claims.get("jti")
    signed = token.strip().rsplit(".", 1)[0]
    which = f"jti\n{jti}" if isinstance(jti, str) and jti else f"signed\n{signed}"
    digest = hashlib.sha256(f"jwt\n{issuer}\n{which}".encode()).digest()
    return digest, float(claims["exp"]) + LEEWAY_SECONDS
