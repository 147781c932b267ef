"""A small, real OpenID Connect issuer for `satgate up` and the tests: RSA keys made with `cryptography`,
discovery and JWKS served over HTTP, ID tokens signed with pyjwt. Not for production identities."""

from __future__ import annotations

import json
import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jwt
from aiohttp import web
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa


@dataclass
class SigningKeyPair:
    kid: str
    private_key: rsa.RSAPrivateKey

    def public_jwk(self) -> dict[str, Any]:
        jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self.private_key.public_key()))
        return {**jwk, "kid": self.kid, "use": "sig", "alg": "RS256"}

    @classmethod
    def generate(cls) -> SigningKeyPair:
        return cls(kid=secrets.token_hex(8), private_key=rsa.generate_private_key(public_exponent=65537, key_size=2048))


@dataclass
class DemoIdp:
    issuer: str
    keys: list[SigningKeyPair] = field(default_factory=lambda: [SigningKeyPair.generate()])
    served_jwks: int = 0  # how often the JWKS was fetched (tests count refetches)

    @property
    def active(self) -> SigningKeyPair:
        return self.keys[-1]

    def rotate(self, *, keep_old: bool = True) -> SigningKeyPair:
        new = SigningKeyPair.generate()
        self.keys = [*self.keys, new] if keep_old else [new]
        return new

    def token(self, subject: str, audience: str | list[str], ttl: int = 600, **claims: Any) -> str:
        now = int(time.time())
        payload = {"iss": self.issuer, "sub": subject, "aud": audience, "iat": now, "exp": now + ttl, **claims}
        return jwt.encode(payload, self.active.private_key, algorithm="RS256", headers={"kid": self.active.kid})

    def app(self) -> web.Application:
        async def discovery(_request: web.Request) -> web.Response:
            return web.json_response(
                {
                    "issuer": self.issuer,
                    "jwks_uri": f"{self.issuer}/jwks",
                    "id_token_signing_alg_values_supported": ["RS256"],
                }
            )

        async def jwks(_request: web.Request) -> web.Response:
            self.served_jwks += 1
            return web.json_response({"keys": [key.public_jwk() for key in self.keys]})

        app = web.Application()
        app.router.add_get("/.well-known/openid-configuration", discovery)
        app.router.add_get("/jwks", jwks)
        return app

    # Persistence for `satgate up`: the key survives restarts, so minted JWTs stay verifiable.
    def save(self, path: Path) -> None:
        pem = self.active.private_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        path.write_text(json.dumps({"issuer": self.issuer, "kid": self.active.kid, "key": pem.decode()}))
        path.chmod(0o600)

    @classmethod
    def load(cls, path: Path) -> DemoIdp:
        doc = json.loads(path.read_text())
        key = serialization.load_pem_private_key(doc["key"].encode(), password=None)
        if not isinstance(key, rsa.RSAPrivateKey):
            raise ValueError(f"{path}: not an RSA key")
        return cls(issuer=doc["issuer"], keys=[SigningKeyPair(doc["kid"], key)])


def run(state_file: Path, host: str, port: int) -> None:
    web.run_app(DemoIdp.load(state_file).app(), host=host, port=port, access_log=None, print=None)
