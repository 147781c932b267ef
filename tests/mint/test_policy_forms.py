"""Trust policies in every form SPEC v2 lists, the seed document's examples loaded as written, and load errors
that say what to write instead."""

import textwrap
from pathlib import Path

import pytest

from mint_server.policies.files import PolicyStore, load_policies, unscoped_rules
from mint_server.policies.models import PolicyError

SEED_POLICIES = Path(__file__).with_name("seed_policies")
SEED_DOCUMENT = "002_5da023b9a188b23f.txt"
ATTRIBUTES = frozenset({"department", "cost_center"})


def seed_text() -> str:
    """The product document users copy from (../shared/seeds beside the checkout, or the workplace's copy)."""
    for seeds in (Path(__file__).resolve().parents[3] / "shared" / "seeds", Path("/work/shared/seeds")):
        if (seeds / SEED_DOCUMENT).exists():
            return (seeds / SEED_DOCUMENT).read_text()
    pytest.skip("the seed documents are not beside this checkout")


@pytest.mark.parametrize("name", ["kubernetes-agents.yaml", "github-actions.yaml"])
def test_the_seed_examples_here_are_the_documents_byte_for_byte(name):
    assert (SEED_POLICIES / name).read_text() in seed_text()  # the seed changed: copy its example again


def test_the_seed_examples_load_as_written():
    doc = load_policies(SEED_POLICIES, ATTRIBUTES, default_tenant="acme")
    by_name = {p.name: p for p in doc.policies}
    assert list(by_name) == ["github-actions", "kubernetes-agents"]  # derived from the file names, in name order
    k8s = by_name["kubernetes-agents"]
    assert (k8s.provider, k8s.tenant, len(k8s.trust_rules)) == ("kubernetes", "acme", 2)
    assert k8s.trust_rules[0].issue.caveats == {"department": "research", "cost_center": "eng-ai"}
    assert by_name["github-actions"].trust_rules[0].issue.label_template == "ci-{{ .Claims.run_id }}"


def test_without_a_default_tenant_the_error_says_where_to_set_one():
    with pytest.raises(PolicyError) as info:
        load_policies(SEED_POLICIES / "github-actions.yaml", ATTRIBUTES)
    assert "tenant: Field required — add `tenant: <name>` to the policy, or set mint.default_tenant" in str(info.value)


def test_an_undeclared_attribute_names_the_setting_to_add():
    with pytest.raises(PolicyError, match=r"add it to authz.attributes in satgate.yaml \(attributes: \[department\]\)"):
        load_policies(SEED_POLICIES / "github-actions.yaml", default_tenant="acme")


ONE = """
provider: oidc
issuer: https://idp.example
audience: satgate
tenant: acme
trust_rules:
  - match: {{claims: {{sub: "{sub}"}}}}
    issue: {{caveats: {caveats}}}
"""


def write(path: Path, text: str) -> Path:
    path.write_text(textwrap.dedent(text))
    return path


def test_a_list_several_documents_and_a_directory_all_load_in_order(tmp_path):
    folder = tmp_path / "policies"
    folder.mkdir()
    write(folder / "a.yaml", ONE.format(sub="a", caveats='["department = x"]'))
    listed = """
    policies:
      - provider: oidc
        issuer: https://idp.example
        audience: satgate
        tenant: acme
        trust_rules:
          - match: {claims: {sub: "b"}}
            issue: {caveats: {department: y}}
    """
    write(folder / "b.yml", listed)
    write(folder / "c.yaml", ONE.format(sub="c", caveats="{}") + "---\n" + ONE.format(sub="d", caveats="{}"))
    write(folder / "notes.txt", "not a policy")
    doc = load_policies(folder, ATTRIBUTES)
    assert [p.name for p in doc.policies] == ["a", "b", "c-1", "c-2"]
    assert [p.trust_rules[0].match.claims["sub"] for p in doc.policies] == ["a", "b", "c", "d"]
    assert doc.policies[0].trust_rules[0].issue.caveats == doc.policies[1].trust_rules[0].issue.caveats | {
        "department": "x"
    }


@pytest.mark.parametrize(
    ("caveats", "expected"),
    [
        ('["department research"]', 'item 0: write each caveat as "key = value", e.g. "department = research"'),
        ('["department = a", "department = b"]', "department appears twice"),
        ("[7]", 'write each caveat as "key = value"'),
        ('["budget = 5"]', "come from the rule's own fields"),
    ],
)
def test_caveat_strings_that_cannot_be_read_say_how_to_write_them(tmp_path, caveats, expected):
    with pytest.raises(PolicyError) as info:
        load_policies(write(tmp_path / "p.yaml", ONE.format(sub="a", caveats=caveats)), ATTRIBUTES)
    assert expected in str(info.value)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("- just a string", "a trust policy file holds one policy at top level"),
        ("policies: {a: 1}", "`policies:` must be a list of policies"),
        ("policies: []\nname: x", "beside `policies:` nothing else belongs at top level"),
        (
            ONE.format(sub="a", caveats="{}").replace("trust_rules", "rules"),
            "`rules` is not a setting here (a policy has:",
        ),
        (ONE.format(sub="a", caveats="{}").split("trust_rules")[0], "trust_rules: Field required — add `trust_rules:`"),
    ],
)
def test_misshapen_files_say_what_to_write(tmp_path, text, expected):
    with pytest.raises(PolicyError) as info:
        load_policies(write(tmp_path / "p.yaml", text), ATTRIBUTES)
    assert expected in str(info.value)


def seed_policies_for(issuer: str, folder: Path) -> Path:
    """The seed's files as written, but for the issuer that is running here (its URL is the one line changed)."""
    folder.mkdir()
    for source in SEED_POLICIES.iterdir():
        lines = source.read_text().splitlines(keepends=True)
        (folder / source.name).write_text(
            "".join(f'issuer: "{issuer}"\n' if line.startswith("issuer:") else line for line in lines)
        )
    return folder


async def test_real_jwts_exchange_against_the_seed_policies(idp, start_mint, tmp_path):
    folder = seed_policies_for(idp.issuer, tmp_path / "seed")
    mint = await start_mint(folder, authz={"attributes": sorted(ATTRIBUTES)}, default_tenant="acme")

    def pod(service_account: str) -> str:
        k8s = {"namespace": "ai-agents", "serviceaccount": {"name": service_account, "uid": "u-1"}}
        return idp.token(f"system:serviceaccount:ai-agents:{service_account}", "satgate", **{"kubernetes.io": k8s})

    status, research = await mint.exchange(pod("research-agent"))
    assert status == 200, research
    assert (research["tenant"], research["budget_credits"], research["policy"]) == ("acme", 1000, "kubernetes-agents")
    assert {"department = research", "cost_center = eng-ai"} <= set(research["caveats"])
    _, general = await mint.exchange(pod("summariser"))
    assert (general["budget_credits"], "department = general" in general["caveats"]) == (200, True)
    ci = idp.token(
        "repo:acme-corp/ai-pipeline:ref:refs/heads/main",
        "satgate",
        repository="acme-corp/ai-pipeline",
        ref="refs/heads/main",
        run_id=4242,
    )
    status, run = await mint.exchange(ci)
    assert status == 200, run
    assert (run["budget_credits"], run["policy"]) == (500, "github-actions")
    assert "label = ci-4242" in run["caveats"] and "department = ci-cd" in run["caveats"]
    other_branch = idp.token("x", "satgate", repository="acme-corp/ai-pipeline", ref="refs/heads/dev", run_id=1)
    assert (await mint.exchange(other_branch))[0] == 403


def test_a_directory_reloads_when_a_file_is_added_changed_or_removed(tmp_path):
    folder = tmp_path / "policies"
    folder.mkdir()
    write(folder / "a.yaml", ONE.format(sub="a", caveats="{}"))
    store = PolicyStore(folder, ATTRIBUTES)
    assert [p.name for p in store.current.policies] == ["a"]
    assert not store.reload_if_changed()
    write(folder / "b.yaml", ONE.format(sub="b", caveats="{}"))
    assert store.reload_if_changed()
    assert [p.name for p in store.current.policies] == ["a", "b"]
    write(folder / "b.yaml", "policies: [")  # a bad edit keeps the last good set
    assert not store.reload_if_changed()
    assert [p.name for p in store.current.policies] == ["a", "b"]
    (folder / "b.yaml").unlink()
    assert store.reload_if_changed()
    assert [p.name for p in store.current.policies] == ["a"]


def test_rules_without_scopes_are_named_and_can_be_made_an_error(tmp_path, capsys):
    """The seed's rules issue no scopes: such tokens pass every route's scope check, so the Mint says so."""
    doc = load_policies(SEED_POLICIES, ATTRIBUTES, default_tenant="acme")
    warnings = unscoped_rules(doc)
    assert len(warnings) == 3 and "policy kubernetes-agents: trust_rules.1 issues no scopes" in warnings[2]
    PolicyStore(SEED_POLICIES, ATTRIBUTES, "acme")
    assert "policy_rule_unscoped" in capsys.readouterr().out
    with pytest.raises(PolicyError, match=r"issues no scopes.*\(mint.require_scopes is on\)"):
        load_policies(SEED_POLICIES, ATTRIBUTES, default_tenant="acme", require_scopes=True)
    scoped = write(tmp_path / "s.yaml", ONE.format(sub="a", caveats="{}").replace("caveats: {}", "scopes: [api:read]"))
    assert load_policies(scoped, require_scopes=True).policies[0].trust_rules[0].issue.scopes == ["api:read"]
