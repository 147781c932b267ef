"""Trust policy files: strict loading that names the field, and the matching semantics of the SPEC."""

import textwrap

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mint_server.policies.files import load_policies
from mint_server.policies.models import (
    Identity,
    PolicyError,
    TrustRule,
    glob_to_regex,
    render_label,
    resolve_pointer,
    rule_matches,
)
from satgate_dev.devstack import EXAMPLE_POLICIES


def load(tmp_path, text: str, attributes=frozenset()):
    path = tmp_path / "p.yaml"
    path.write_text(textwrap.dedent(text))
    return load_policies(path, attributes)


BASE = """
policies:
  - name: p
    provider: {provider}
    {issuer}
    tenant: acme
    trust_rules:
      - match: {match}
        issue: {issue}
"""


def policy(provider="oidc", issuer="issuer: https://idp.example\n    audience: satgate", match="{}", issue="{}"):
    return BASE.format(provider=provider, issuer=issuer, match=match, issue=issue)


def test_the_shipped_example_loads():
    doc = load_policies(EXAMPLE_POLICIES)
    assert [p.provider for p in doc.policies] == ["oidc", "kubernetes", "github", "aws"]


@pytest.mark.parametrize(
    ("text", "where"),
    [
        (policy(issue="{ttl: forever}"), "policies.0.trust_rules.0.issue.ttl"),
        (policy(issue="{budget_credits: 0}"), "policies.0.trust_rules.0.issue.budget_credits"),
        (policy(issue='{scopes: ["api::x"]}'), "policies.0.trust_rules.0.issue.scopes"),
        (policy(issue="{max_delegation_depth: 17}"), "policies.0.trust_rules.0.issue.max_delegation_depth"),
        (policy(issue='{label_template: "{{ .Env.SECRET }}"}'), "policies.0.trust_rules.0.issue.label_template"),
        (policy(issue="{caveats: {budget: '5'}}"), "policies.0.trust_rules.0.issue.caveats"),
        (policy(issue="{colour: red}"), "policies.0.trust_rules.0.issue.colour"),
        (policy(provider="github", issuer="audience: satgate"), "policies.0"),
        (policy(issuer="issuer: http://idp.example.com\n    audience: satgate"), "policies.0"),
        (policy(match="{namespace: agents}"), "policies.0"),
        (policy(match="{claims: {'/a/~2': x}}"), "policies.0.trust_rules.0.match.claims"),
        (policy(provider="kubernetes", match="{arn: x}"), "policies.0"),
        (policy().replace("tenant: acme", "tenant: ACME"), "policies.0.tenant"),
        (policy().replace("provider: oidc", "provider: saml"), "policies.0.provider"),
        ("policies: [{name: a}]", "policies.0.provider"),
        ("nonsense: 1", "  nonsense: Extra inputs are not permitted"),
    ],
)
def test_bad_files_name_the_field(tmp_path, text, where):
    with pytest.raises(PolicyError) as info:
        load(tmp_path, text)
    assert where in str(info.value)


def test_caveats_are_validated_at_load(tmp_path):
    with pytest.raises(PolicyError, match=r"issue.caveats.methods: .*HTTP methods"):
        load(tmp_path, policy(issue="{caveats: {methods: 'get'}}"))
    with pytest.raises(PolicyError, match=r"issue\.caveats\.department: unknown caveat"):
        load(tmp_path, policy(issue="{caveats: {department: eng}}"))
    assert load(tmp_path, policy(issue="{caveats: {department: eng}}"), frozenset({"department"}))


def test_duplicate_names_and_unreadable_files(tmp_path):
    doc = policy()
    with pytest.raises(PolicyError, match="duplicate policy name"):
        load(tmp_path, doc + doc.split("policies:\n")[1])
    with pytest.raises(PolicyError, match="cannot read"):
        load_policies(tmp_path / "missing.yaml")
    with pytest.raises(PolicyError, match="not valid YAML"):
        load(tmp_path, "policies: [")


def rule(**match) -> TrustRule:
    return TrustRule.model_validate({"match": match, "issue": {}})


def who(**claims) -> Identity:
    return Identity(provider="jwt", subject="s", claims=claims)


@pytest.mark.parametrize(
    ("pattern", "value", "expected"),
    [
        ("acme/*", "acme/app", True),
        ("acme/*", "acme/", True),
        ("acme/*", "evil/acme/app", False),  # whole-string match
        ("acme/?pp", "acme/app", True),
        ("acme/?pp", "acme/aapp", False),
        ("a.b", "axb", False),  # '.' is literal
        ("[ab]", "a", False),  # so are brackets
        ("refs/heads/main", "refs/heads/main-evil", False),
    ],
)
def test_glob_semantics(pattern, value, expected):
    assert rule_matches(rule(claims={"repository": pattern}), who(repository=value)) is expected


def test_keys_and_lists_or():
    r = rule(claims={"repository": "acme/*", "ref": ["refs/heads/main", "refs/tags/v*"]})
    assert rule_matches(r, who(repository="acme/x", ref="refs/tags/v1.2"))
    assert not rule_matches(r, who(repository="acme/x", ref="refs/heads/dev"))
    assert not rule_matches(r, who(repository="other/x", ref="refs/heads/main"))
    assert not rule_matches(r, who(repository="acme/x"))  # a missing claim never matches


def test_numeric_bool_array_and_object_claims():
    assert rule_matches(rule(claims={"run_id": "42*"}), who(run_id=4242))
    assert rule_matches(rule(claims={"repository_id": "123"}), who(repository_id=123))
    assert rule_matches(rule(claims={"groups": "admins"}), who(groups=["users", "admins"]))
    assert not rule_matches(rule(claims={"groups": "admins"}), who(groups=["users"]))
    assert rule_matches(rule(claims={"email_verified": "true"}), who(email_verified=True))
    assert not rule_matches(rule(claims={"obj": "*"}), who(obj={"a": 1}))


def test_json_pointers():
    claims = {"kubernetes.io": {"namespace": "agents", "pod": {"name": "research-1"}}, "a/b": {"c~d": "x"}}
    assert rule_matches(rule(claims={"/kubernetes.io/pod/name": "research-*"}), who(**claims))
    assert rule_matches(rule(claims={"/a~1b/c~0d": "x"}), who(**claims))
    assert resolve_pointer({"l": [10, 20]}, "/l/1") == 20
    assert resolve_pointer({"l": [10]}, "/l/5") is None


def test_kubernetes_match_keys():
    claims = {
        "sub": "system:serviceaccount:agents:research-bot",
        "kubernetes.io": {"namespace": "agents", "serviceaccount": {"name": "research-bot", "uid": "u"}},
    }
    r = TrustRule.model_validate({"match": {"namespace": "agents", "service_account": "research-*"}, "issue": {}})
    assert rule_matches(r, who(**claims))
    claims["kubernetes.io"]["namespace"] = "default"
    assert not rule_matches(r, who(**claims))


def test_aws_match_keys():
    r = TrustRule.model_validate({"match": {"account": "1234*", "arn": "arn:aws:iam::*:role/batch-*"}, "issue": {}})
    assert rule_matches(
        r, Identity("aws", "x", {"arn": "arn:aws:iam::123456789012:role/batch-a", "account": "123456789012"})
    )
    assert not rule_matches(
        r, Identity("aws", "x", {"arn": "arn:aws:iam::123456789012:user/bob", "account": "123456789012"})
    )


def test_label_templates():
    claims = {"run_id": 42, "repository": "acme/app", "nested": {"k": "v"}, "evil": "a\nb\x00c"}
    assert render_label("gh {{ .Claims.repository }}#{{.Claims.run_id}}", claims) == "gh acme/app#42"
    assert render_label("{{ .Claims.missing }}", claims) == ""
    assert render_label("{{ .Claims.nested.k }}", claims) == "v"
    assert render_label("x {{ .Claims.evil }}", claims) == "x a b c"
    assert len(render_label("{{ .Claims.long }}", {"long": "y" * 5000})) == 1024


@given(st.text(alphabet=st.characters(blacklist_characters="*?"), max_size=30), st.text(max_size=30))
def test_patterns_without_wildcards_match_only_themselves(pattern, other):
    regex = glob_to_regex(pattern)
    assert regex.fullmatch(pattern)
    assert (regex.fullmatch(other) is not None) == (other == pattern)


@given(st.text(max_size=20), st.text(max_size=20))
def test_star_between_matches_any_middle(prefix, middle):
    assert glob_to_regex(prefix.replace("*", "").replace("?", "") + "*").fullmatch(
        prefix.replace("*", "").replace("?", "") + middle
    )


def test_a_file_that_is_not_utf8_is_refused_with_one_line(tmp_path):
    """Found by the trust-policy fuzz harness: a Latin-1 file was a UnicodeDecodeError traceback."""
    path = tmp_path / "p.yaml"
    path.write_bytes("policies:\n  - name: caf\xe9\n".encode("latin-1"))
    with pytest.raises(PolicyError, match=r"p\.yaml: not UTF-8 text \(byte \d+\); save the file as UTF-8"):
        load_policies(path, frozenset())
