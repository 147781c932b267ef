"""Demo upstream for `satgate up` and the end-to-end tests: echoes what reached it as JSON, so you can
see the headers the authz server injected and that Authorization never arrives."""

from __future__ import annotations

from aiohttp import web


async def echo(request: web.Request) -> web.Response:
    return web.json_response(
        {
            "method": request.method,
            "path": request.path_qs,
            "headers": {k.lower(): v for k, v in request.headers.items()},
        }
    )


def create_app() -> web.Application:
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", echo)
    return app


def run(host: str, port: int) -> None:
    web.run_app(create_app(), host=host, port=port, access_log=None, print=None)
