"""Judge a verified token's caveats, and the grants the route demands, against one request."""

from __future__ import annotations

from satgate.caveats import Denial, RequestFacts
from satgate.caveats.base import caveat_failed
from satgate.routes import RouteSettings
from satgate.tokens.verify import VerifiedToken


def judge(token: VerifiedToken, route: RouteSettings, facts: RequestFacts) -> Denial | None:
    for caveat in token.checks:  # time caveats first: an expired token is told so before anything else
        denial = caveat.check(facts)
        if denial is not None:
            return denial
    if route.tenant is not None and token.tenant != route.tenant:
        return caveat_failed("tenant", f"this route serves tenant {route.tenant!r}")
    # Every scope caveat permitted the required scopes above; the issuer must also have granted them.
    for required in facts.required_scopes:
        if not token.grants.grant_scope(required):
            return Denial(403, "insufficient_scope", f"scope {required!r} is required and not granted", "scope")
    for key, expected in route.require:
        values = [a.value for a in token.attributes if a.key == key]
        if token.attribute(key) != expected or any(value != expected for value in values):
            return caveat_failed(f"require.{key}", f"this route requires {key} = {expected} (set by the issuer)")
    return None
