"""For agents: hold a SatGate token without holding a secret.

    agent = SatGateAgent("http://satgate-mint:8081", identity=IdentityFile("/var/run/secrets/tokens/satgate"))
    httpx.get("http://api.mesh/v1/items", auth=agent.auth())      # or requests.get(..., auth=agent.auth())
    child = agent.delegate(budget_credits=10, scopes=["api:read"], ttl="30m")

The agent exchanges its platform identity (a Kubernetes projected token, a GitHub Actions ID token, any OIDC JWT)
at the Mint, re-reads the identity each time (kubelet rotates the file), refreshes the SatGate token in the
background before it expires, and on a 401 refreshes once and retries.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Generator, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from satgate.timefmt import parse_duration
from satgate.tokens.delegate import Delegated, delegate


class SatGateError(RuntimeError):
    def __init__(self, status: int, error: str, message: str) -> None:
        super().__init__(f"{status} {error}: {message}")
        self.status, self.error, self.message = status, error, message


@dataclass(frozen=True)
class IdentityFile:
    """A JWT in a file, re-read on every exchange (projected service-account tokens rotate)."""

    path: str | os.PathLike[str]

    def __call__(self) -> str:
        return Path(self.path).read_text().strip()


@dataclass(frozen=True)
class IdentityEnv:
    name: str

    def __call__(self) -> str:
        value = os.environ.get(self.name, "").strip()
        if not value:
            raise SatGateError(0, "no_identity", f"environment variable {self.name} is empty")
        return value


@dataclass(frozen=True)
class Held:
    token: str
    token_id: str
    expires_at: float
    tenant: str
    # The identity's budget across its exchanges (a trust rule's, SPEC v2.2), as of this exchange: what was left
    # and when it refills (None for a budget of this token alone)
    remaining: int | None = None
    resets_at: float | None = None


EXCHANGE_PATH = "/api/mint/exchange"


def mint_base_url(url: str) -> str:
    """The Mint's base URL from either form a pod spec sets: the base, or the full exchange URL."""
    base = url.strip().rstrip("/")
    for suffix in (EXCHANGE_PATH, "/api/mint"):
        if base.endswith(suffix):
            return base[: -len(suffix)]
    return base


def _refusal(response: httpx.Response, default_error: str) -> SatGateError:
    """The server's own error and message; for an answer that is not the Mint's JSON, what came back instead."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and body.get("error"):
        return SatGateError(response.status_code, str(body["error"]), str(body.get("message") or body))
    text = " ".join(response.text.split())[:200] or "(empty body)"
    detail = f"{response.request.method} {response.request.url} answered {response.status_code}: {text}"
    if response.status_code == 404:
        detail += " — is SATGATE_MINT_URL the Mint's address?"
    return SatGateError(response.status_code, default_error, detail)


def _epoch(text: str) -> float:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp()


class SatGateAgent:
    def __init__(
        self,
        mint_url: str,
        *,
        identity: Callable[[], str],
        refresh_before_seconds: float = 300.0,
        http: httpx.Client | None = None,
    ) -> None:
        self._mint = mint_base_url(mint_url)
        self._identity = identity
        self._refresh_before = refresh_before_seconds
        self._http = http or httpx.Client(timeout=10.0)
        self._lock = threading.Lock()
        self._held: Held | None = None
        self._timer: threading.Timer | None = None
        self._closed = False

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None, **options: Any) -> SatGateAgent:
        """Configured the way a pod spec does it: SATGATE_MINT_URL (the Mint's base URL or its full exchange URL),
        and SATGATE_IDENTITY_FILE (a projected token's
        path) or SATGATE_IDENTITY_ENV (the name of a variable holding the JWT, e.g. a CI job's ID token)."""
        env = os.environ if environ is None else environ
        mint_url = env.get("SATGATE_MINT_URL", "").strip()
        if not mint_url:
            raise SatGateError(0, "no_mint", "SATGATE_MINT_URL is not set")
        if env.get("SATGATE_IDENTITY_FILE"):
            identity: Callable[[], str] = IdentityFile(env["SATGATE_IDENTITY_FILE"])
        elif env.get("SATGATE_IDENTITY_ENV"):
            identity = IdentityEnv(env["SATGATE_IDENTITY_ENV"])
        else:
            raise SatGateError(0, "no_identity", "set SATGATE_IDENTITY_FILE or SATGATE_IDENTITY_ENV")
        return cls(mint_url, identity=identity, **options)

    # -------------------------------------------------------------------------------- the token
    def token(self) -> str:
        """The current token, exchanging first if there is none or it is about to expire."""
        with self._lock:
            held = self._held
            if held is None or held.expires_at - time.time() <= min(self._refresh_before, 5.0):
                held = self._exchange_locked()
            return held.token

    @property
    def held(self) -> Held | None:
        return self._held

    def refresh(self) -> str:
        with self._lock:
            return self._exchange_locked().token

    def _exchange_locked(self) -> Held:
        response = self._http.post(f"{self._mint}{EXCHANGE_PATH}", json={"credentials": self._identity()})
        if response.status_code != 200:
            raise _refusal(response, "exchange_failed")
        body = response.json()
        budget = body.get("identity_budget") or {}
        self._held = Held(
            body["token"],
            body["token_id"],
            _epoch(body["expires_at"]),
            body["tenant"],
            remaining=budget.get("remaining"),
            resets_at=_epoch(budget["resets_at"]) if budget.get("resets_at") else None,
        )
        self._schedule_refresh(self._held)
        return self._held

    def _schedule_refresh(self, held: Held) -> None:
        if self._timer is not None:
            self._timer.cancel()
        if self._closed:
            return
        delay = max(held.expires_at - time.time() - self._refresh_before, 1.0)
        self._timer = threading.Timer(delay, self._refresh_in_background)
        self._timer.daemon = True
        self._timer.start()

    def _refresh_in_background(self) -> None:
        try:
            self.refresh()
        except (SatGateError, httpx.HTTPError, OSError):
            # Keep the current token; the next token() call retries before it expires.
            if self._held is not None and not self._closed:
                retry = threading.Timer(10.0, self._refresh_in_background)
                retry.daemon = True
                self._timer = retry
                retry.start()

    # -------------------------------------------------------------------------------- using it
    def auth(self) -> SatGateAuth:
        return SatGateAuth(self)

    def delegate(
        self,
        *,
        budget_credits: int | None = None,
        scopes: Iterable[str] = (),
        ttl: str = "1h",
        label: str | None = None,
        budget_window: str | None = None,
    ) -> dict[str, Any]:
        """A narrower child for a sub-agent, recorded by the Mint (revocable on its own). `budget_window`
        ("500/1d") caps what it spends per window, beside every budget it inherits (a team pool)."""
        body: dict[str, Any] = {"scopes": list(scopes), "ttl": ttl}
        if budget_credits is not None:
            body["budget_credits"] = budget_credits
        if budget_window is not None:
            body["budget_window"] = budget_window
        if label:
            body["label"] = label
        response = self._http.post(
            f"{self._mint}/api/mint/delegate", json=body, headers={"Authorization": f"Bearer {self.token()}"}
        )
        if response.status_code != 200:
            raise _refusal(response, "delegate_failed")
        result: dict[str, Any] = response.json()
        return result

    def close(self) -> None:
        self._closed = True
        if self._timer is not None:
            self._timer.cancel()
        self._http.close()

    def __enter__(self) -> SatGateAgent:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class SatGateAuth(httpx.Auth):
    """`auth=` for httpx, and callable for requests: adds the Bearer token; on a 401 refreshes once and retries."""

    def __init__(self, agent: SatGateAgent) -> None:
        self._agent = agent

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = f"Bearer {self._agent.token()}"
        response = yield request
        if response.status_code == 401:
            request.headers["Authorization"] = f"Bearer {self._agent.refresh()}"
            yield request

    def __call__(self, request: Any) -> Any:  # requests.auth.AuthBase protocol
        request.headers["Authorization"] = f"Bearer {self._agent.token()}"
        return request


def delegate_offline(
    token: str,
    *,
    ttl: str = "1h",
    budget_credits: int | None = None,
    scopes: Iterable[str] = (),
    label: str | None = None,
    budget_window: str | None = None,
) -> Delegated:
    """Hand a sub-agent a narrower child without asking anyone: no key is needed, the authz server accepts it
    like a Mint-made child, and revoking `result.delegation_id` (or any ancestor) cuts it off. Unlike
    server-side delegation, the Mint's delegation tree does not know about it."""
    return delegate(
        token,
        ttl_seconds=parse_duration(ttl),
        budget_credits=budget_credits,
        budget_window=budget_window,
        scopes=scopes,
        label=label,
    )
