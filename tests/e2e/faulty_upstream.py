"""An upstream that fails on request, for the delivery tests: /…/503 answers 503, /…/reset closes the connection
without an answer, /…/cost/<n> answers 200 saying it cost n credits (x-satgate-cost), an MCP tools/call says its
`cost` argument likewise, /…/slow/<ms> answers 200 after ms milliseconds, anything else 200; GET /served tells
how many requests it took on (2xx answers, counted on arrival: a client that gave up on a slow answer was still
served)."""

from __future__ import annotations

import argparse
import asyncio

from aiohttp import web

SERVED = web.AppKey("served", list)


async def handle(request: web.Request) -> web.StreamResponse:
    if request.path == "/served":
        return web.json_response({"served": len(request.app[SERVED])})
    if request.path.endswith("/503"):
        return web.json_response({"error": "upstream is failing"}, status=503)
    if request.path.endswith("/reset"):
        assert request.transport is not None
        request.transport.abort()  # no answer at all: Envoy sees the connection reset
        raise web.HTTPInternalServerError  # never written: the connection is gone
    request.app[SERVED].append(request.path)
    head, _, milliseconds = request.path.rpartition("/slow/")
    if head:
        await asyncio.sleep(int(milliseconds) / 1000)
        return web.json_response({"path": request.path})
    head, _, cost = request.path.rpartition("/cost/")
    if head:
        return web.json_response({"path": request.path}, headers={"x-satgate-cost": cost})
    if request.method == "POST" and request.content_type == "application/json":
        call = await request.json()
        if call.get("method") == "tools/call":
            reported = str(call["params"].get("arguments", {}).get("cost", ""))
            result = {"jsonrpc": "2.0", "id": call.get("id"), "result": {"content": [{"type": "text", "text": "ok"}]}}
            return web.json_response(result, headers={"x-satgate-cost": reported} if reported else None)
    return web.json_response({"path": request.path})


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    app = web.Application()
    app[SERVED] = []
    app.router.add_route("*", "/{tail:.*}", handle)
    web.run_app(app, host="127.0.0.1", port=args.port, access_log=None, print=None)


if __name__ == "__main__":
    main()
