"""The HTTP transport (SPEC: Transports): Envoy's ext_authz `http_service`, served by uvicorn (uvloop, httptools)
through a bare ASGI callable. A thin adapter: the checked request becomes the pipeline's CheckInput, its Answer
becomes Envoy's HTTP contract — every rule lives in the pipeline, and no protobuf is built on this path.

Envoy's side (envoy/envoy-http.yaml): checks arrive under CHECK_PREFIX (`path_prefix`), with the downstream
address in SOURCE_HEADER and the ext_authz timeout in TIMEOUT_HEADER, both set by Envoy (a client's copies are
overwritten). An allow is 200 with the upstream headers, the removals in `x-envoy-auth-headers-to-remove` and the
access-log fields as `x-satgate-log-*` (`dynamic_metadata_from_headers`); a refusal is its status and body.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from authz_server.check import CheckPipeline
from authz_server.check_input import CheckInput
from authz_server.responses import LOG_HEADER_PREFIX, Answer
from satgate.tls import ReloadingContext, TlsFiles

CHECK_PREFIX = "/satgate/check"
SOURCE_HEADER = "x-satgate-source-ip"
TIMEOUT_HEADER = "x-satgate-timeout-ms"
START_HEADER = "x-satgate-request-start"  # unix seconds when Envoy got the request: the deadline counts from it
REMOVE_HEADER = "x-envoy-auth-headers-to-remove"
MAX_BODY_BYTES = 8 * 1024 * 1024  # as the gRPC transport's message cap; Envoy bounds MCP bodies first (1 MiB)
READINESS_PATHS = frozenset({"/readyz", "/healthz"})

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]

_JSON = [(b"content-type", b"application/json"), (b"cache-control", b"no-store")]
_NO_BODY = (b"content-length", b"0")


class HttpAuthorization:
    """The ASGI application. `ready()` is what grpc.health reports: the ledger reachable and marked."""

    def __init__(self, pipeline: CheckPipeline, ready: Callable[[], bool]) -> None:
        self._pipeline = pipeline
        self._ready = ready

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        path = scope["path"]
        if not path.startswith(CHECK_PREFIX):
            await self._outside_checks(path, scope["method"], send)
            return
        arrived = time.time()
        body = await _read_body(scope, receive)
        if body is None:
            await _plain(send, 413, {"error": "body_too_large", "message": f"bodies are capped at {MAX_BODY_BYTES}"})
            return
        request, deadline = _check_input(scope, body, arrived)
        # The check runs in this (uvicorn's) task, watched: should Envoy give up (timeout, reset) it is cancelled,
        # since nobody gets that answer, and the pipeline refunds what a cancelled check spent.
        watch = _DisconnectWatch(receive)
        try:
            response = await self._pipeline.check(request, deadline)
        except asyncio.CancelledError:
            if watch.cancelled_us():
                return
            raise  # the server stops
        finally:
            watch.stop()
        await _respond(send, response)

    async def _outside_checks(self, path: str, method: str, send: Send) -> None:
        """Readiness answers 204, never 200: should a check ever reach it (no path_prefix), Envoy refuses."""
        if path in READINESS_PATHS and method in ("GET", "HEAD"):
            ready = path == "/healthz" or self._ready()
            await send({"type": "http.response.start", "status": 204 if ready else 503, "headers": []})
            await send({"type": "http.response.body", "body": b""})
            return
        await _plain(
            send,
            404,
            {"error": "not_a_check", "message": f"checks arrive under {CHECK_PREFIX} (http_service path_prefix)"},
        )


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


async def _read_body(scope: Scope, receive: Receive) -> bytes | None:
    for name, value in scope["headers"]:
        if name == b"content-length" and value.isdigit() and int(value) > MAX_BODY_BYTES:
            return None
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return b""
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


class _DisconnectWatch:
    """Cancels the current task when the client disconnects, until stopped."""

    __slots__ = ("_fired", "_stopped", "_task", "_watcher")

    def __init__(self, receive: Receive) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._task = task
        self._fired = self._stopped = False
        self._watcher = asyncio.ensure_future(_disconnected(receive))
        self._watcher.add_done_callback(self._on_disconnect)

    def _on_disconnect(self, watcher: asyncio.Future[None]) -> None:
        if not self._stopped and not watcher.cancelled():
            self._fired = True
            self._task.cancel()

    def cancelled_us(self) -> bool:
        """Whether the cancellation is ours (the client left); then it is absorbed."""
        if self._fired:
            self._task.uncancel()
        return self._fired

    def stop(self) -> None:
        self._stopped = True  # a disconnect already seen but not yet called back no longer cancels
        self._watcher.cancel()


async def _disconnected(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


def _check_input(scope: Scope, body: bytes, arrived: float) -> tuple[CheckInput, float | None]:
    """What Envoy's gRPC client would have sent for this request, and the check's deadline."""
    headers: dict[str, str] = {}
    timeout: float | None = None
    started = arrived
    for raw_name, raw_value in scope["headers"]:
        name, value = raw_name.decode("latin-1"), raw_value.decode("latin-1")
        if name in headers:  # repeated headers join with ',' as Envoy's own CheckRequest does
            headers[name] = f"{headers[name]},{value}"
        else:
            headers[name] = value
    source_ip = headers.get(SOURCE_HEADER, "")
    if (raw_timeout := headers.get(TIMEOUT_HEADER, "")).isdigit():
        timeout = int(raw_timeout) / 1000
    if START_HEADER in headers:
        with contextlib.suppress(ValueError):
            started = min(float(headers[START_HEADER]), arrived)
    raw_path = scope.get("raw_path") or scope["path"].encode("latin-1")
    path = raw_path.decode("latin-1")[len(CHECK_PREFIX) :] or "/"
    query = scope.get("query_string", b"")
    request = CheckInput(
        method=scope["method"],
        path=f"{path}?{query.decode('latin-1')}" if query else path,
        host=headers.get("host", ""),
        headers=headers,
        source_ip=source_ip,
        body=body,
    )
    return request, (started + timeout if timeout is not None else None)


async def _respond(send: Send, answer: Answer) -> None:
    headers = [((LOG_HEADER_PREFIX + key).encode(), str(value).encode()) for key, value in answer.metadata.items()]
    if not answer.allowed:
        body = answer.body.encode()
        headers += [(k.encode(), v.encode()) for k, v in answer.downstream_headers]
        headers.append((b"content-length", str(len(body)).encode()))
        await send({"type": "http.response.start", "status": answer.status, "headers": headers})
        await send({"type": "http.response.body", "body": body})
        return
    headers += [(k.encode(), v.encode()) for k, v in answer.upstream_headers]
    upstream = {k for k, _v in answer.upstream_headers}  # a header for both sides is sent once; Envoy copies it
    headers += [(k.encode(), v.encode()) for k, v in answer.downstream_headers if k not in upstream]
    if answer.remove_headers:
        headers.append((REMOVE_HEADER.encode(), ",".join(answer.remove_headers).encode()))
    headers.append(_NO_BODY)  # not chunked: the headers are the whole answer, one write
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": b""})


async def _plain(send: Send, status: int, body: dict[str, str]) -> None:
    encoded = json.dumps(body).encode()
    headers = [*_JSON, (b"content-length", str(len(encoded)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": encoded})


class HttpListener:
    """uvicorn (httptools) on its own socket, started and stopped inside the server's event loop. The socket is
    bound here so that workers share it with SO_REUSEPORT exactly as the gRPC listener does."""

    def __init__(self, app: HttpAuthorization, listen: str, *, shared_port: bool, tls: TlsFiles | None = None) -> None:
        import uvicorn  # noqa: PLC0415 - only when the HTTP transport is on

        self._unix_path = listen.removeprefix("unix:") if listen.startswith("unix:") else None
        if self._unix_path is not None:
            self._socket = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            target: str | tuple[str, int] = self._unix_path
        else:
            host, _, port = listen.rpartition(":")
            host = host.strip("[]")
            self._socket = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
            self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if shared_port:
                self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            target = (host, int(port))
        try:
            self._socket.bind(target)
        except OSError as exc:
            self._socket.close()
            reason = f"cannot listen on {listen} ({exc.strerror})"
            raise OSError(f"authz.http_listen: {reason}; set authz.http_listen to a free address") from None
        self._socket.listen(4096)
        config = uvicorn.Config(
            app,
            http="httptools",
            lifespan="off",
            access_log=False,
            log_config=None,
            server_header=False,
            date_header=False,
            timeout_keep_alive=300,  # Envoy pools its connections to us
            proxy_headers=False,  # the client address arrives in SOURCE_HEADER, set by Envoy
        )
        config.load()
        # TLS: our context, so that new files are taken in place (uvicorn reads config.ssl at startup only)
        self._tls = ReloadingContext(tls) if tls is not None else None
        config.ssl = self._tls.context if self._tls is not None else None
        self._tls_watch: asyncio.Task[None] | None = None
        self._server = uvicorn.Server(config)
        self._server.lifespan = config.lifespan_class(config)
        self._main: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self._server.startup(sockets=[self._socket])
        self._main = asyncio.create_task(self._server.main_loop())
        if self._tls is not None:
            self._tls_watch = asyncio.create_task(self._tls.watch())

    async def stop(self) -> None:
        if self._tls_watch is not None:
            self._tls_watch.cancel()
        self._server.should_exit = True
        if self._main is not None:
            await self._main
        await self._server.shutdown(sockets=[self._socket])
