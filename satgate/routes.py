"""Per-route settings (SPEC: Envoy contract): from Envoy's context_extensions, or from a server-side
route table for meshes that cannot set them (Istio). context_extensions override the table per key."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from satgate.caveats.scope import is_valid_scope
from satgate.route_index import RouteIndex, fold_case
from satgate.tokens.identifier import TENANT_RE

_COST_RE = re.compile(r"0|[1-9][0-9]{0,14}")
_ATTR_KEY_RE = re.compile(r"[a-z][a-z0-9_.]{0,63}")
KNOWN_KEYS = frozenset({"scope", "cost", "mcp", "pricing", "tenant", "mode", "refund_on", "settle"})
SETTLE = ("response_header",)  # settle the debit to the upstream's x-satgate-cost response header
REFUND_ON = ("5xx", "reset")  # the upstream answered 5xx; the request never got an answer (connect failure, reset)
MODES = ("enforce", "observe")


class RouteConfigError(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class RouteSettings:
    scopes: tuple[str, ...] = ()
    cost: int | None = None  # None: the configured default
    mcp: bool = False
    pricing: str | None = None
    tenant: str | None = None
    require: tuple[tuple[str, str], ...] = ()
    mode: str | None = None  # enforce | observe; None: the server's authz.mode
    refund_on: tuple[str, ...] = ()  # of REFUND_ON: refund the debit when Envoy's access log says so
    settle: str | None = None  # of SETTLE: reserve the cost, settle to what the upstream says it cost

    @classmethod
    def from_mapping(cls, values: Mapping[str, str]) -> RouteSettings:
        scopes: tuple[str, ...] = ()
        if raw_scope := values.get("scope", "").strip():
            scopes = tuple(s.strip() for s in raw_scope.split(","))
            bad = [s for s in scopes if not is_valid_scope(s)]
            if bad:
                raise RouteConfigError(f"route setting 'scope': invalid scope(s) {bad}")
        cost = None
        if "cost" in values:
            if not _COST_RE.fullmatch(values["cost"]):
                raise RouteConfigError(f"route setting 'cost': {values['cost']!r} is not a non-negative integer")
            cost = int(values["cost"])
        mcp_text = values.get("mcp", "false").lower()
        if mcp_text not in {"true", "false"}:
            raise RouteConfigError(f"route setting 'mcp': {values['mcp']!r} is not true or false")
        mode = values.get("mode")
        if mode is not None and mode not in MODES:
            raise RouteConfigError(f"route setting 'mode': {mode!r} is not enforce or observe")
        refund_on, settle = _delivery_settings(values)
        tenant = values.get("tenant")
        if tenant is not None and not TENANT_RE.fullmatch(tenant):
            raise RouteConfigError(f"route setting 'tenant': {tenant!r} is not a tenant name")
        require = []
        for key, value in values.items():
            if key.startswith("require."):
                attr = key.removeprefix("require.")
                if not _ATTR_KEY_RE.fullmatch(attr) or not value:
                    raise RouteConfigError(f"route setting {key!r}: needs an attribute key and a value")
                require.append((attr, value))
        return cls(
            scopes=scopes,
            cost=cost,
            mcp=mcp_text == "true",
            pricing=values.get("pricing"),
            tenant=tenant,
            require=tuple(sorted(require)),
            mode=mode,
            refund_on=refund_on,
            settle=settle,
        )


def _delivery_settings(values: Mapping[str, str]) -> tuple[tuple[str, ...], str | None]:
    """refund_on and settle: what Envoy's access log does to the debit once the upstream answered."""
    refund_on: tuple[str, ...] = ()
    if raw_refund := values.get("refund_on", "").strip():
        refund_on = tuple(sorted({r.strip() for r in raw_refund.split(",")}))
        if unknown := [r for r in refund_on if r not in REFUND_ON]:
            raise RouteConfigError(f"route setting 'refund_on': {unknown} are not of {', '.join(REFUND_ON)}")
    settle = values.get("settle")
    if settle is not None and settle not in SETTLE:
        raise RouteConfigError(f"route setting 'settle': {settle!r} is not response_header")
    return refund_on, settle


@dataclass(frozen=True, slots=True)
class RouteRule:
    settings: Mapping[str, str]
    path_prefix: str = "/"
    host: str | None = None  # exact, `*.suffix` or None for any
    methods: frozenset[str] | None = None

    def matches(self, host: str, path: str, method: str) -> bool:
        if self.methods is not None and method not in self.methods:
            return False
        if not fold_case(path).startswith(fold_case(self.path_prefix)):
            return False
        if self.host is None or self.host == "*":
            return True
        if self.host.startswith("*."):
            return host.endswith(self.host[1:])
        return host == self.host


_CACHE_LIMIT = 4096


class RouteTable:
    """First matching rule wins (found through an index, not a scan: satgate/route_index.py); with no match only
    context_extensions apply. Parsed settings are cached:
    their inputs come from Envoy and satgate config, never from clients, so there are few of them."""

    def __init__(self, rules: Sequence[RouteRule] = ()) -> None:
        self._rules = tuple(rules)
        for rule in self._rules:
            RouteSettings.from_mapping(rule.settings)  # fail at load, not on the first request
        self._index = RouteIndex(self._rules)
        self._cache: dict[tuple[int, tuple[tuple[str, str], ...]], RouteSettings] = {}

    def settings_for(self, host: str, path: str, method: str, context_extensions: Mapping[str, str]) -> RouteSettings:
        rule_index = self._index.first_match(host, path, method)
        key = (rule_index, tuple(context_extensions.items()))
        settings = self._cache.get(key)
        if settings is None:
            merged = (
                {**self._rules[rule_index].settings, **context_extensions} if rule_index >= 0 else context_extensions
            )
            settings = RouteSettings.from_mapping(merged)  # bad settings raise, so they are never cached
            if len(self._cache) >= _CACHE_LIMIT:
                self._cache.clear()
            self._cache[key] = settings
        return settings
