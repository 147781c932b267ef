"""The route index answers exactly what the linear first-match scan answers (RouteRule.matches, the reference)."""

from hypothesis import given, settings
from hypothesis import strategies as st

from satgate.route_index import RouteIndex
from satgate.routes import RouteRule, RouteTable

# Small alphabets, so random rules and requests overlap often: shared prefixes, nested hosts, method clashes.
_paths = st.text(alphabet="/ab", max_size=5)
_hosts = st.sampled_from(["a.com", "b.a.com", "x.b.a.com", "a.co", "com", ""])
_rule_hosts = st.one_of(st.none(), st.just("*"), _hosts, _hosts.map(lambda h: f"*.{h}"))
_methods = st.one_of(st.none(), st.frozensets(st.sampled_from(["GET", "POST", "PUT"]), min_size=1))
_rules = st.lists(
    st.builds(RouteRule, settings=st.just({}), path_prefix=_paths, host=_rule_hosts, methods=_methods), max_size=12
)
_requests = st.tuples(_hosts, _paths, st.sampled_from(["GET", "POST", "PUT", "DELETE"]))


def linear(rules, host, path, method) -> int:
    return next((i for i, rule in enumerate(rules) if rule.matches(host, path, method)), -1)


@settings(max_examples=400)
@given(rules=_rules, requests=st.lists(_requests, min_size=1, max_size=10))
def test_the_index_finds_the_first_matching_rule_as_a_scan_does(rules, requests):
    index = RouteIndex(rules)
    for host, path, method in requests:
        assert index.first_match(host, path, method) == linear(rules, host, path, method)


def test_first_match_wins_across_host_kinds():
    rules = [
        RouteRule({"cost": "1"}, path_prefix="/v1/admin", methods=frozenset({"POST"})),
        RouteRule({"cost": "2"}, path_prefix="/v1/", host="*.example.com"),
        RouteRule({"cost": "3"}, path_prefix="/v1/items", host="api.example.com"),
        RouteRule({"cost": "4"}, path_prefix="/"),
    ]
    table = RouteTable(rules)
    assert table.settings_for("api.example.com", "/v1/admin/x", "POST", {}).cost == 1
    assert table.settings_for("api.example.com", "/v1/items", "GET", {}).cost == 2  # the earlier wildcard wins
    assert table.settings_for("example.com", "/v1/items", "GET", {}).cost == 4  # *.example.com needs a subdomain
    assert table.settings_for("other", "/x", "GET", {"cost": "9"}).cost == 9  # context_extensions over the rule


def test_prefixes_match_regardless_of_case():
    """An upstream that serves /V1/PREMIUM as /v1/premium gets the premium route's settings for it; the case of
    anything but ASCII letters is left alone (no length change, no Unicode folding)."""
    table = RouteTable(
        [
            RouteRule({"scope": "api:premium"}, path_prefix="/v1/Premium/"),
            RouteRule({"scope": "api:read"}, path_prefix="/v1/"),
        ]
    )
    for path in ("/v1/premium/x", "/V1/PREMIUM/x", "/v1/pREMium/x"):
        assert table.settings_for("api", path, "GET", {}).scopes == ("api:premium",), path
    dotless = "/v1/prem\u0131um/x"  # U+0131 upper-cases to I, but is not i: no Unicode folding
    assert table.settings_for("api", dotless, "GET", {}).scopes == ("api:read",)
