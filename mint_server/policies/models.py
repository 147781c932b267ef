"""Trust policies: which workload identities may exchange for which tokens (SPEC: Mint / Trust policies).

Policies are evaluated in file order; within a policy, rules in order; the first matching rule wins.
The models and the matching; the files they come from: mint_server/policies/files.py.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from mint_server.identity.base import Identity
from mint_server.identity.oidc import FetchOptions
from satgate.caveats.budget_window import BudgetWindow
from satgate.caveats.grammar import CaveatSyntaxError
from satgate.caveats.scope import is_valid_pattern
from satgate.timefmt import parse_duration
from satgate.tokens.identifier import TENANT_RE
from satgate.urls import https_unless_loopback, is_loopback_url

Provider = Literal["kubernetes", "oidc", "github", "aws"]
JWT_PROVIDERS = frozenset({"kubernetes", "oidc", "github"})
BUDGET_OWNERS = frozenset({"identity", "policy", "token"})
_TEMPLATE_RE = re.compile(r"\{\{\s*(.*?)\s*\}\}")
_PLACEHOLDER_RE = re.compile(r"\.Claims\.([A-Za-z0-9_\-]+(?:\.[A-Za-z0-9_\-]+)*)")
# Caveats a rule may not set directly: they come from the rule's own fields or from delegation.
_RESERVED_CAVEATS = frozenset(
    {"expires", "budget", "budget_window", "budget_bucket", "scope", "delegation", "max_delegation_depth", "label"}
)


class PolicyError(ValueError):
    pass


def glob_to_regex(pattern: str) -> re.Pattern[str]:
    """Whole-string match: `*` any run (including empty), `?` one character, everything else literal."""
    parts = ["[\\s\\S]*" if c == "*" else "[\\s\\S]" if c == "?" else re.escape(c) for c in pattern]
    return re.compile("".join(parts))


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


Patterns = str | list[str]


class Match(_Strict):
    namespace: Patterns | None = None  # kubernetes: kubernetes.io.namespace
    service_account: Patterns | None = None  # kubernetes: kubernetes.io.serviceaccount.name
    arn: Patterns | None = None  # aws: canonical ARN (assumed-role → iam role)
    account: Patterns | None = None  # aws
    claims: dict[str, Patterns] = {}

    @field_validator("claims")
    @classmethod
    def _pointer_syntax(cls, value: dict[str, Patterns]) -> dict[str, Patterns]:
        for key in value:
            if not key:
                raise ValueError("claim names must not be empty")
            if key.startswith("/") and re.search(r"~[^01]|~$", key):
                raise ValueError(f"{key!r} is not a valid JSON pointer (~ must be ~0 or ~1)")
        return value


class Issue(_Strict):
    budget_credits: Annotated[int, Field(ge=1, le=10**15)] | None = None
    budget_window: str | None = None  # "500/1d": credits per window, beside (or instead of) budget_credits
    ttl: str = "1h"
    scopes: list[str] = []
    caveats: dict[str, str] = {}
    label_template: str | None = None
    max_delegation_depth: Annotated[int, Field(ge=0, le=16)] | None = None
    # What the budget belongs to (SPEC v2.2): the identity (its subject), a claim template ("{{ .Claims.run_id }}"),
    # the policy (one pool for the rule), or token (a fresh budget per exchange: no ceiling, warned at load).
    budget_per: str = "identity"

    @field_validator("budget_per")
    @classmethod
    def _budget_per(cls, value: str) -> str:
        if value in BUDGET_OWNERS:
            return value
        expressions = _TEMPLATE_RE.findall(value)
        if not expressions or any(not _PLACEHOLDER_RE.fullmatch(e) for e in expressions):
            raise ValueError(
                f'{value!r}: use identity, policy, token, or a claim template such as "{{{{ .Claims.run_id }}}}"'
            )
        return value

    @field_validator("ttl")
    @classmethod
    def _duration(cls, value: str) -> str:
        parse_duration(value)
        return value

    @field_validator("budget_window")
    @classmethod
    def _window(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                BudgetWindow.parse(value)
            except CaveatSyntaxError:
                raise ValueError(
                    f"{value!r} is not <credits>/<period>: credits 1..10^15, period <n>m, <n>h, <n>d or month "
                    '(e.g. "500/1d")'
                ) from None
        return value

    @field_validator("scopes")
    @classmethod
    def _scopes(cls, value: list[str]) -> list[str]:
        bad = [s for s in value if not is_valid_pattern(s)]
        if bad:
            raise ValueError(f"invalid scope pattern(s): {', '.join(bad)}")
        return value

    @field_validator("label_template")
    @classmethod
    def _template(cls, value: str | None) -> str | None:
        for expression in _TEMPLATE_RE.findall(value or ""):
            if not _PLACEHOLDER_RE.fullmatch(expression):
                raise ValueError(f"unsupported template expression {expression!r}; use {{{{ .Claims.<name> }}}}")
        return value

    @field_validator("caveats", mode="before")
    @classmethod
    def _caveat_strings(cls, value: Any) -> Any:
        """The seed's form: a list of "key = value" strings, the same caveats as a mapping."""
        if not isinstance(value, list):
            return value
        caveats: dict[str, str] = {}
        for index, item in enumerate(value):
            key, equals, text = item.partition("=") if isinstance(item, str) else ("", "", "")
            key, text = key.strip(), text.strip()
            if not equals or not key or not text:
                raise ValueError(f'item {index}: write each caveat as "key = value", e.g. "department = research"')
            if key in caveats:
                raise ValueError(f"{key} appears twice: one value per caveat key")
            caveats[key] = text
        return caveats

    @field_validator("caveats")
    @classmethod
    def _caveat_keys(cls, value: dict[str, str]) -> dict[str, str]:
        reserved = sorted(set(value) & _RESERVED_CAVEATS)
        if reserved:
            raise ValueError(f"{', '.join(reserved)} come from the rule's own fields (ttl, scopes, budget_credits, …)")
        return value


class TrustRule(_Strict):
    name: str | None = None
    match: Match = Match()
    issue: Issue


class TrustPolicy(_Strict):
    name: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$")]
    provider: Provider
    tenant: str
    issuer: str | None = None
    audience: str | list[str] | None = None
    jwks_uri: str | None = None
    # A non-public issuer (the in-cluster Kubernetes API server): its CA, and a token to read discovery/JWKS with
    ca_file: Path | None = None
    bearer_token_file: Path | None = None
    disabled: bool = False
    max_ttl: str | None = None
    # once: each identity JWT (its jti, else the whole token) is exchanged at most once until it expires
    jwt_reuse: Literal["reuse", "once"] = "reuse"
    trust_rules: Annotated[list[TrustRule], Field(min_length=1)]

    @field_validator("tenant")
    @classmethod
    def _tenant(cls, value: str) -> str:
        if not TENANT_RE.fullmatch(value):
            raise ValueError(f"{value!r} is not a tenant name ([a-z0-9][a-z0-9-]{{0,62}})")
        return value

    @field_validator("max_ttl")
    @classmethod
    def _max_ttl(cls, value: str | None) -> str | None:
        if value is not None:
            parse_duration(value)
        return value

    @model_validator(mode="after")
    def _provider_fields(self) -> TrustPolicy:
        if self.provider in JWT_PROVIDERS:
            if not self.issuer:
                raise ValueError(f"provider {self.provider} needs 'issuer' (an https:// URL)")
            https_unless_loopback(self.issuer)
            if self.jwks_uri:
                https_unless_loopback(self.jwks_uri)
            if not self.audience:
                raise ValueError(f"provider {self.provider} needs 'audience'")
            if self.bearer_token_file and not self.ca_file and not is_loopback_url(self.issuer):
                raise ValueError(
                    "bearer_token_file needs ca_file: the token is only sent to servers that CA vouches for"
                )
        elif self.ca_file or self.bearer_token_file:
            raise ValueError("ca_file/bearer_token_file are for JWT providers")
        for index, rule in enumerate(self.trust_rules):
            m = rule.match
            if self.provider != "kubernetes" and (m.namespace or m.service_account):
                raise ValueError(f"trust_rules.{index}.match: namespace/service_account are kubernetes-only")
            if self.provider != "aws" and (m.arn or m.account):
                raise ValueError(f"trust_rules.{index}.match: arn/account are aws-only")
            if self.provider == "aws" and m.claims:
                raise ValueError(f"trust_rules.{index}.match: aws identities have arn/account, not claims")
        return self

    @property
    def fetch_options(self) -> FetchOptions:
        return FetchOptions(ca_file=self.ca_file, bearer_token_file=self.bearer_token_file)

    @property
    def audiences(self) -> list[str]:
        return [self.audience] if isinstance(self.audience, str) else list(self.audience or [])


class PolicyFile(_Strict):
    policies: list[TrustPolicy]

    @model_validator(mode="after")
    def _unique_names(self) -> PolicyFile:
        """Names are per tenant (SPEC v2.2): two tenants may each have their `agents`."""
        keys = [(p.tenant, p.name) for p in self.policies]
        duplicates = sorted({f"{n} (tenant {t})" for t, n in keys if keys.count((t, n)) > 1})
        if duplicates:
            raise ValueError(f"duplicate policy name(s): {', '.join(duplicates)}")
        return self


# ---------------------------------------------------------------------------------------------- matching
def resolve_pointer(document: Any, pointer: str) -> Any:
    """RFC 6901; a missing path is None."""
    current = document
    for raw in pointer.split("/")[1:]:
        token = raw.replace("~1", "/").replace("~0", "~")
        if isinstance(current, Mapping) and token in current:
            current = current[token]
        elif isinstance(current, list) and token.isdigit() and int(token) < len(current):
            current = current[int(token)]
        else:
            return None
    return current


def claim_value(claims: Mapping[str, Any], name: str) -> Any:
    return resolve_pointer(claims, name) if name.startswith("/") else claims.get(name)


def _as_strings(value: Any) -> Iterator[str]:
    """Numbers compare as their decimal text; arrays match if any element does; objects never match."""
    if isinstance(value, bool):
        yield "true" if value else "false"
    elif isinstance(value, str | int | float):
        yield str(value)
    elif isinstance(value, list):
        for item in value:
            yield from _as_strings(item) if not isinstance(item, list) else ()


def value_matches(value: Any, patterns: Patterns) -> bool:
    if value is None:
        return False
    pattern_list = [patterns] if isinstance(patterns, str) else patterns
    compiled = [_compiled(p) for p in pattern_list]
    return any(regex.fullmatch(text) for text in _as_strings(value) for regex in compiled)


_PATTERN_CACHE: dict[str, re.Pattern[str]] = {}


def _compiled(pattern: str) -> re.Pattern[str]:
    regex = _PATTERN_CACHE.get(pattern)
    if regex is None:
        regex = _PATTERN_CACHE.setdefault(pattern, glob_to_regex(pattern))
    return regex


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def rule_matches(rule: TrustRule, identity: Identity) -> bool:
    return match_holds(rule.match, identity)


def match_holds(m: Match, identity: Identity) -> bool:
    """Every field the match sets holds for the identity's claims (a trust rule's, or a tenant's assigned share)."""
    claims = identity.claims
    k8s = _mapping(claims.get("kubernetes.io"))
    service_account = _mapping(k8s.get("serviceaccount"))
    checks: list[tuple[Any, Patterns | None]] = [
        (k8s.get("namespace"), m.namespace),
        (service_account.get("name"), m.service_account),
        (claims.get("arn"), m.arn),
        (claims.get("account"), m.account),
        *((claim_value(claims, name), patterns) for name, patterns in m.claims.items()),
    ]
    return all(value_matches(value, patterns) for value, patterns in checks if patterns is not None)


def render_label(template: str, claims: Mapping[str, Any]) -> str:
    def substitute(match: re.Match[str]) -> str:
        placeholder = _PLACEHOLDER_RE.fullmatch(match.group(1))
        if placeholder is None:  # validated at load; defensive for templates built in code
            return ""
        name = placeholder.group(1)
        value = claims.get(name)
        if value is None and "." in name:
            value = resolve_pointer(claims, "/" + name.replace(".", "/"))
        return "" if value is None or isinstance(value, Mapping | list) else str(value)

    text = _TEMPLATE_RE.sub(substitute, template)
    text = re.sub(r"[\x00-\x1f\x7f-\x9f]", " ", text).strip()
    return text[:1024].strip()
