"""Which tenant an identity belongs to (SPEC v2.2: Tenants and issuers).

An issuer (a JWT `iss`, or an AWS account) belongs to one tenant: the tenant of the first policy that trusts it —
the platform admin's policy files first, then policies created through the admin API, oldest first. Its key
source (`jwks_uri`, CA, bearer token) is read from that tenant's policies only, and its identities are matched only
against that tenant's policies. An issuer the platform admin shares between tenants (one Kubernetes cluster, GitHub
Actions) is declared in `mint.shared_issuers`, with the claims each tenant is assigned (its namespaces, its
repository owner): its key source is the platform admin's, and an identity goes to the one tenant whose assigned
claims it carries. A tenant admin's policy that would trust another tenant's issuer is refused, without naming
the other tenant."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from mint_server.identity.base import Identity
from mint_server.identity.oidc import PUBLIC, FetchOptions
from mint_server.policies.models import JWT_PROVIDERS, Match, PolicyError, TrustPolicy, match_holds

_ANY_ACCOUNT = "aws:*"


@dataclass(frozen=True)
class SharedIssuer:
    """`mint.shared_issuers[i]`: one issuer several tenants use, each for the identities carrying its claims."""

    issuer: str
    assignments: Mapping[str, Match]  # tenant → the claims its identities carry
    jwks_uri: str | None = None
    fetch: FetchOptions = PUBLIC

    @classmethod
    def from_config(cls, index: int, entry: Any) -> SharedIssuer:
        assignments: dict[str, Match] = {}
        for tenant, claims in entry.tenants.items():
            try:
                assignments[tenant] = Match.model_validate(claims)
            except ValidationError as exc:
                problem = exc.errors()[0]
                where = ".".join(str(p) for p in problem["loc"])
                raise PolicyError(
                    f"mint.shared_issuers.{index}.tenants.{tenant}{'.' + where if where else ''}: {problem['msg']} "
                    "(assign claims as a trust rule's match: namespace, service_account, claims)"
                ) from None
        fetch = FetchOptions(ca_file=entry.ca_file, bearer_token_file=entry.bearer_token_file)
        return cls(entry.issuer, assignments, entry.jwks_uri, fetch)


@dataclass(frozen=True)
class IssuerRoute:
    """How to verify one issuer's JWTs, and which policies may then match its identities."""

    jwks_uri: str | None
    fetch: FetchOptions
    policies: tuple[TrustPolicy, ...]  # of the owning tenant, or of every tenant assigned a share
    shared: SharedIssuer | None = None

    @property
    def audiences(self) -> list[str]:
        return sorted({a for p in self.policies for a in p.audiences})

    def candidates(self, identity: Identity) -> list[TrustPolicy]:
        """The policies of the one tenant this identity belongs to (none when it carries no tenant's claims, or
        more than one's: an identity belongs to at most one tenant)."""
        if self.shared is None:
            return list(self.policies)
        tenants = [t for t, claims in self.shared.assignments.items() if match_holds(claims, identity)]
        if len(tenants) != 1:
            return []
        return [p for p in self.policies if p.tenant == tenants[0]]


def _aws_accounts(policy: TrustPolicy) -> set[str]:
    """The AWS accounts an aws policy trusts: each rule's exact `account`, or any account when a rule pins none."""
    accounts: set[str] = set()
    for rule in policy.trust_rules:
        account = rule.match.account
        literal = account if isinstance(account, str) else account[0] if account and len(account) == 1 else None
        accounts.add(f"aws:{literal}" if literal and not set(literal) & set("*?") else _ANY_ACCOUNT)
    return accounts


def trusted_keys(policy: TrustPolicy) -> set[str]:
    """What a policy claims: its JWT issuer, or the AWS accounts its rules trust."""
    if policy.provider in JWT_PROVIDERS:
        return {policy.issuer or ""}
    return _aws_accounts(policy)


class IssuerDirectory:
    def __init__(self, policies: Sequence[TrustPolicy], shared: Sequence[SharedIssuer] = ()) -> None:
        self._shared = {s.issuer: s for s in shared}
        self._owners: dict[str, str] = {}
        self._policies = tuple(policies)
        for policy in policies:
            for key in trusted_keys(policy):
                if key not in self._shared:
                    self._owners.setdefault(key, policy.tenant)

    def jwt_route(self, issuer: str) -> IssuerRoute | None:
        shared = self._shared.get(issuer)
        if shared is not None:
            policies = tuple(
                p
                for p in self._policies
                if p.issuer == issuer and p.provider in JWT_PROVIDERS
                if p.tenant in shared.assignments
            )
            return IssuerRoute(shared.jwks_uri, shared.fetch, policies, shared) if policies else None
        owner = self._owners.get(issuer)
        policies = tuple(
            p for p in self._policies if p.provider in JWT_PROVIDERS and p.issuer == issuer and p.tenant == owner
        )
        if not policies:
            return None
        jwks_uri = next((p.jwks_uri for p in policies if p.jwks_uri), None)
        fetch = next((p.fetch_options for p in policies if p.ca_file or p.bearer_token_file), PUBLIC)
        return IssuerRoute(jwks_uri, fetch, policies)

    def aws_candidates(self, account: str) -> list[TrustPolicy]:
        owner = self._owners.get(f"aws:{account}", self._owners.get(_ANY_ACCOUNT))
        return [
            p
            for p in self._policies
            if p.provider == "aws" and p.tenant == owner and trusted_keys(p) & {f"aws:{account}", _ANY_ACCOUNT}
        ]

    def overlap(self, policy: TrustPolicy) -> str | None:
        """Why `policy` may not be added (it would trust another tenant's identities), or None. Names nobody."""
        for key in trusted_keys(policy):
            shared = self._shared.get(key)
            if shared is not None:
                if policy.tenant not in shared.assignments:
                    return (
                        "its issuer is shared between tenants by the platform admin, and none of its identities "
                        "are assigned to this tenant (mint.shared_issuers)"
                    )
                continue
            others = {t for k, t in self._owners.items() if t != policy.tenant and _overlaps(k, key)}
            if others:
                what = "issuer" if policy.provider in JWT_PROVIDERS else "AWS account"
                return (
                    f"its {what} is already trusted by another tenant's policies; a platform admin can share it "
                    "between tenants (mint.shared_issuers) with the claims each tenant's identities carry"
                )
        return None


def _overlaps(owned: str, wanted: str) -> bool:
    if owned == wanted:
        return True
    return owned.startswith("aws:") and wanted.startswith("aws:") and _ANY_ACCOUNT in (owned, wanted)


def file_conflicts(policies: Sequence[TrustPolicy], shared: Sequence[SharedIssuer], where: Path | str) -> None:
    """Policy files (the platform admin's) trusting one issuer for two tenants: refused at load, with the fix."""
    for index, policy in enumerate(policies):
        if IssuerDirectory(policies[:index], shared).overlap(policy) is not None:
            raise PolicyError(
                f"{where}: policy {policy.name!r} (tenant {policy.tenant!r}) trusts an issuer or AWS account that "
                "another tenant's policy trusts or that is shared without this tenant; declare it under "
                "mint.shared_issuers with the claims each tenant's identities carry"
            )
