"""The HTTP baseline: a bare ASGI callable on uvicorn (httptools, uvloop) that allows every check at once, and
answers /readyz 204 like ours — the same runtime as the HTTP transport, none of its work."""

from __future__ import annotations

import sys

import uvicorn


async def allow(scope, receive, send) -> None:
    if scope["type"] != "http":
        return
    status = 204 if scope["path"] == "/readyz" else 200
    await send({"type": "http.response.start", "status": status, "headers": []})
    await send({"type": "http.response.body", "body": b""})


if __name__ == "__main__":
    where = sys.argv[1]  # host:port, or unix:/path
    host, _, port = where.rpartition(":")
    address = {"uds": where.removeprefix("unix:")} if where.startswith("unix:") else {"host": host, "port": int(port)}
    print("ready", flush=True)
    uvicorn.run(
        allow,
        **address,  # type: ignore[arg-type]
        loop="uvloop",
        http="httptools",
        lifespan="off",
        access_log=False,
        log_level="warning",
        server_header=False,
        date_header=False,
    )
