"""Console sessions without server state, so any Mint replica serves any request: the cookie holds the admin
credential itself (HttpOnly, SameSite=Strict, Secure under TLS) and every request verifies it again — expiry,
revocation and the role hold as they do for the API. Forms carry a CSRF token: an HMAC, with a key derived from
the keyring, of the credential's fingerprint, which a page from another origin cannot compute."""

from __future__ import annotations

import hashlib
import hmac

from aiohttp import web

from satgate.keyring import Keyring
from satgate.tokens.verify import VerifiedToken

COOKIE = "satgate_console"
CSRF_FIELD = "csrf_token"


def csrf_token(keyring: Keyring, token: VerifiedToken) -> str:
    key = keyring.console_csrf_key(keyring.active_kid)
    return hmac.new(key, f"csrf\n{token.fingerprint}".encode(), hashlib.sha256).hexdigest()


def csrf_valid(keyring: Keyring, token: VerifiedToken, presented: str) -> bool:
    return bool(presented) and hmac.compare_digest(csrf_token(keyring, token), presented)


def set_session_cookie(response: web.StreamResponse, credential: str, *, secure: bool, max_age: int) -> None:
    response.set_cookie(
        COOKIE, credential, httponly=True, samesite="Strict", secure=secure, path="/console", max_age=max_age
    )
