"""`SatGateClient`: an MCP client (the official `mcp` SDK, Streamable HTTP) that reaches an MCP server through
SatGate, as the token-delivery guide writes it:

    async with SatGateClient(url="https://mcp.example/mcp", token=satgate_token) as client:
        tools = await client.list_tools()
        result = await client.call_tool("search", {"query": "q"})

or with no token at all, exchanging the workload identity at the Mint and refreshing by itself:

    async with SatGateClient(url=..., mint_url="http://satgate-mint:8081", identity_file="/var/run/…/satgate"):

SatGate's refusals arrive as JSON-RPC errors; they are raised as typed errors — BudgetExhausted (402, with `cost`
and `remaining`), NotPermitted (403, with the `caveat`), NotAuthorized (401), Unavailable (503)."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncGenerator, Callable
from types import TracebackType
from typing import Any

import httpx2
from mcp.client.session import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError

from satgate_sdk.client import IdentityFile, SatGateAgent, SatGateError


class NotAuthorized(SatGateError):
    """401: no token, a bad or expired one, or a revoked one."""


class BudgetExhausted(SatGateError):
    """402: the token's budget cannot pay this call."""

    def __init__(self, status: int, error: str, message: str, *, cost: int | None, remaining: int | None) -> None:
        super().__init__(status, error, message)
        self.cost, self.remaining = cost, remaining


class NotPermitted(SatGateError):
    """403: a caveat (scope, tool, path, …) or the route's requirements refuse this call."""

    def __init__(self, status: int, error: str, message: str, *, caveat: str | None) -> None:
        super().__init__(status, error, message)
        self.caveat = caveat


class Unavailable(SatGateError):
    """503: SatGate could not decide (its ledger is unreachable); nothing was charged."""


_STATUS_OF_CODE = {-32001: 401, -32002: 402, -32003: 403, -32004: 503}


def satgate_error(exc: MCPError) -> SatGateError | None:
    """SatGate's refusal inside a JSON-RPC error, typed; None for the MCP server's own errors."""
    status = _STATUS_OF_CODE.get(exc.error.code)
    data = exc.error.data if isinstance(exc.error.data, dict) else {}
    if status is None or "error" not in data:
        return None
    error, message = str(data["error"]), exc.error.message
    if status == 402:
        return BudgetExhausted(status, error, message, cost=data.get("cost"), remaining=data.get("remaining"))
    if status == 403:
        return NotPermitted(status, error, message, caveat=data.get("caveat"))
    return (NotAuthorized if status == 401 else Unavailable)(status, error, message)


class _FreshToken(httpx2.Auth):
    """The agent's current token on every request; on a 401, one refresh and one retry (a token revoked or
    expired between refreshes). Mint calls run in a thread: the event loop never waits on them."""

    def __init__(self, agent: SatGateAgent) -> None:
        self._agent = agent

    async def async_auth_flow(self, request: httpx2.Request) -> AsyncGenerator[httpx2.Request, httpx2.Response]:
        request.headers["Authorization"] = f"Bearer {await asyncio.to_thread(self._agent.token)}"
        response = yield request
        if response.status_code == 401:
            request.headers["Authorization"] = f"Bearer {await asyncio.to_thread(self._agent.refresh)}"
            yield request


class SatGateClient:
    def __init__(
        self,
        url: str | None = None,
        *,
        token: str | None = None,
        mint_url: str | None = None,
        identity_file: str | os.PathLike[str] | None = None,
        identity: Callable[[], str] | None = None,
        agent: SatGateAgent | None = None,
        timeout: float = 30.0,
    ) -> None:
        """`url`: the MCP endpoint through SatGate (default: $SATGATE_URL). Credentials, one of: `token`; `agent`;
        `mint_url` (default: $SATGATE_MINT_URL, base or full exchange URL) with `identity_file` or `identity`."""
        self.url = url or os.environ.get("SATGATE_URL", "")
        if not self.url:
            raise SatGateError(0, "no_url", "give url= or set SATGATE_URL to the MCP endpoint")
        if token is None and agent is None:
            mint_url = mint_url or os.environ.get("SATGATE_MINT_URL")
            if identity is None and identity_file is not None:
                identity = IdentityFile(identity_file)
            if not mint_url or identity is None:
                raise SatGateError(0, "no_credentials", "give token=, or mint_url= with identity_file= (or identity=)")
            agent = SatGateAgent(mint_url, identity=identity)
        self._token, self._agent, self._timeout = token, agent, timeout
        self._stack: contextlib.AsyncExitStack | None = None
        self.session: ClientSession | None = None

    async def __aenter__(self) -> SatGateClient:
        stack = contextlib.AsyncExitStack()
        try:
            if self._token is not None:
                http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {self._token}"}, timeout=self._timeout)
            else:
                assert self._agent is not None
                http = httpx2.AsyncClient(auth=_FreshToken(self._agent), timeout=self._timeout)
            await stack.enter_async_context(http)
            read, write, *_ = await stack.enter_async_context(streamable_http_client(self.url, http_client=http))
            self.session = await stack.enter_async_context(ClientSession(read, write))
            await self._call(self.session.initialize())
        except BaseException:
            await stack.aclose()
            raise
        self._stack = stack
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._stack is not None:
            await self._stack.aclose()
        self._stack, self.session = None, None

    async def _call(self, pending: Any) -> Any:
        try:
            return await pending
        except MCPError as exc:
            typed = satgate_error(exc)
            if typed is None:
                raise
            raise typed from exc

    def _session(self) -> ClientSession:
        if self.session is None:
            raise RuntimeError("use SatGateClient as `async with SatGateClient(...) as client:`")
        return self.session

    async def list_tools(self) -> list[Any]:
        return list((await self._call(self._session().list_tools())).tools)

    async def call_tool(self, name: str, arguments: dict[str, Any] | None = None) -> Any:
        return await self._call(self._session().call_tool(name, arguments or {}))
