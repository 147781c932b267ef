"""HTTP/JSON API on aiohttp."""

from __future__ import annotations

from aiohttp import web

from authz_server.credential import bearer_token
from satgate.caveats import Denial
from satgate.config import Config
from satgate.keyring import load_keyring
from satgate.ledger import Ledger, LedgerUnavailable
from satgate.ledger.url import open_ledger
from satgate.tokens.verify import TokenRejected, TokenVerifier

VERIFIER = web.AppKey("verifier", TokenVerifier)
LEDGER = web.AppKey("ledger", Ledger)


async def healthz(_request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


def _invalid(denial: Denial) -> web.Response:
    return web.json_response({"valid": False, "error": denial.error, "message": denial.message})


async def verify(request: web.Request) -> web.Response:
    """Is this token genuine, unrevoked and what can it still spend? Judges no request caveats."""
    token_text = bearer_token(request.headers.get("Authorization", ""))
    if isinstance(token_text, Denial):
        return web.json_response({"error": token_text.error, "message": token_text.message}, status=400)
    try:
        token = request.app[VERIFIER].verify(token_text)
    except TokenRejected as exc:
        return _invalid(exc.denial)
    ledger = request.app[LEDGER]
    try:
        revoked = await ledger.is_revoked(token.tenant, token.revocation_ids)
        remaining = await ledger.remaining(token.tenant, token.buckets)
    except LedgerUnavailable:
        return web.json_response({"error": "unavailable", "message": "ledger unavailable"}, status=503)
    if revoked:
        return _invalid(Denial(401, "revoked", "token has been revoked"))
    return web.json_response(
        {
            "valid": True,
            "token_id": token.token_id,
            "tenant": token.tenant,
            "caveats": list(token.caveat_texts),
            "remaining": remaining,
        }
    )


def create_app(config: Config) -> web.Application:
    app = web.Application(client_max_size=64 * 1024)
    app[VERIFIER] = TokenVerifier(load_keyring(config.keyring), attribute_keys=config.authz.attributes)
    app[LEDGER] = open_ledger(config.ledger)

    async def _close(app: web.Application) -> None:
        await app[LEDGER].close()

    app.on_cleanup.append(_close)
    app.router.add_get("/healthz", healthz)
    app.router.add_post("/api/mint/verify", verify)
    return app


def run(config: Config) -> None:
    host, _, port = config.mint.listen.rpartition(":")
    web.run_app(create_app(config), host=host, port=int(port), access_log=None, print=None)
