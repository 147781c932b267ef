"""Trust policy files in every form SPEC v2 lists: one policy at the top of a file (the seed document's form),
a `policies:` list, several YAML documents, or a directory of such files (read in name order). A policy without
`name` is named after its file (and its place in it); one without `tenant` takes `mint.default_tenant`.
A bad file refuses to load with lines naming the file, the field and what to write instead."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import structlog
import yaml
from pydantic import ValidationError

from mint_server.policies.models import PolicyError, PolicyFile, TrustPolicy
from mint_server.policies.tenants import IssuerDirectory, SharedIssuer, file_conflicts
from satgate.caveats import BUILTIN, CaveatSyntaxError, format_caveat, parse_caveat

POLICY_SUFFIXES = (".yaml", ".yml")
log = structlog.get_logger("satgate.mint")
_NAME_UNSAFE = re.compile(r"[^A-Za-z0-9_.\-]+")
_SHAPE = (
    "a trust policy file holds one policy at top level (provider, issuer, audience, trust_rules), "
    "or `policies:` with a list of them"
)


def policy_files(path: Path) -> list[Path]:
    if path.is_dir():
        return sorted(f for f in path.iterdir() if f.suffix in POLICY_SUFFIXES and not f.name.startswith("."))
    return [path]


def policies_stamp(path: Path) -> tuple[tuple[str, float, int], ...] | None:
    """What changes when any policy file does (a directory: its files, added and removed ones too)."""
    try:
        return tuple((f.name, (st := f.stat()).st_mtime, st.st_size) for f in policy_files(path))
    except OSError:
        return None


def _hint(error: Any) -> str:
    field = str(error["loc"][-1]) if error["loc"] else ""
    if error["type"] == "missing" and field == "tenant":
        return "add `tenant: <name>` to the policy, or set mint.default_tenant in satgate.yaml"
    if error["type"] == "missing":
        return f"add `{field}:`" + (" (a list of {match, issue})" if field == "trust_rules" else "")
    if error["type"] == "extra_forbidden":
        known = ", ".join(TrustPolicy.model_fields) if len(error["loc"]) <= 1 else ""
        return f"`{field}` is not a setting here" + (f" (a policy has: {known})" if known else "; check its spelling")
    return ""


def _problems(exc: ValidationError, where: str = "") -> list[str]:
    """One line per error: the field's path, what is wrong, and the fix when there is one."""
    lines = []
    for error in exc.errors():
        location = where + ".".join(str(x) for x in error["loc"])
        hint = _hint(error)
        lines.append(f"{location or '(top level)'}: {error['msg']}" + (f" — {hint}" if hint else ""))
    return lines


def _entries(document: Any, file: Path) -> tuple[list[Any], bool]:
    """The policy mappings of one YAML document, and whether they came from a `policies:` list."""
    if isinstance(document, dict) and "policies" in document:
        extra = sorted(set(document) - {"policies"})
        if extra:
            raise PolicyError(f"{file}: beside `policies:` nothing else belongs at top level (found {extra})")
        if not isinstance(document["policies"], list):
            raise PolicyError(f"{file}: `policies:` must be a list of policies (each item starts with `- `)")
        return document["policies"], True
    if isinstance(document, dict):
        return [document], False
    if isinstance(document, list):
        return document, True
    raise PolicyError(f"{file}: {_SHAPE}")


def _read(file: Path, default_tenant: str | None) -> list[TrustPolicy]:
    try:
        documents = [d for d in yaml.safe_load_all(file.read_text()) if d is not None]
    except OSError as exc:
        raise PolicyError(f"{file}: cannot read trust policies ({exc.strerror})") from exc
    except UnicodeDecodeError as exc:  # found by fuzz/harnesses.py::trust_policy_file
        raise PolicyError(f"{file}: not UTF-8 text (byte {exc.start}); save the file as UTF-8") from None
    except yaml.YAMLError as exc:
        raise PolicyError(f"{file}: not valid YAML ({exc})") from exc
    entries: list[tuple[Any, bool]] = []
    for document in documents:
        found, listed = _entries(document, file)
        entries += [(entry, listed) for entry in found]
    stem = _NAME_UNSAFE.sub("-", file.stem).strip("-.") or "policy"
    policies, problems = [], []
    for index, (raw, listed) in enumerate(entries):
        where = f"policies.{index}." if listed else ""
        if not isinstance(raw, dict):
            problems.append(f"  {where or '(top level)'}: {_SHAPE}")
            continue
        entry = dict(raw)
        entry.setdefault("name", stem if len(entries) == 1 else f"{stem}-{index + 1}")
        if default_tenant is not None:
            entry.setdefault("tenant", default_tenant)
        try:
            policies.append(TrustPolicy.model_validate(entry))
        except ValidationError as exc:
            problems += [f"  {line}" for line in _problems(exc, where)]
    if problems:
        raise PolicyError("\n".join([f"{file}: invalid trust policies", *problems]))
    return policies


def _check_caveats(doc: PolicyFile, attribute_keys: frozenset[str]) -> None:
    """Caveats are validated at load with the same parser the authz server uses."""
    for policy in doc.policies:
        for r_index, rule in enumerate(policy.trust_rules):
            for key, value in rule.issue.caveats.items():
                where = f"policy {policy.name}: trust_rules.{r_index}.issue.caveats.{key}"
                if key not in BUILTIN and key not in attribute_keys:
                    raise PolicyError(
                        f"{where}: unknown caveat — an attribute the authz server must know: add it to "
                        f"authz.attributes in satgate.yaml (attributes: [{key}])"
                    )
                try:
                    parse_caveat(format_caveat(key, value), attribute_keys)
                except CaveatSyntaxError as exc:
                    raise PolicyError(f"{where}: {exc}") from None


def validate_policy(
    document: object,
    attribute_keys: frozenset[str],
    *,
    tenant: str,
    require_scopes: bool = False,
) -> TrustPolicy:
    """A policy sent to the admin API, checked exactly as one in a file is (the same model, caveat parser and
    scope rule); PolicyError lists every problem, one line each. `tenant`: the admin's own, the only one allowed."""
    if not isinstance(document, dict):
        raise PolicyError(f"(top level): {_SHAPE}")
    entry = dict(document)
    entry.setdefault("tenant", tenant)
    try:
        policy = TrustPolicy.model_validate(entry)
    except ValidationError as exc:
        raise PolicyError("\n".join(_problems(exc))) from None
    if policy.ca_file or policy.bearer_token_file:
        raise PolicyError(
            "ca_file/bearer_token_file: paths on the Mint's host are set in policy files only (an API caller must "
            "not make the Mint read a file of its choosing)"
        )
    if policy.tenant != tenant:
        raise PolicyError(f"tenant: {policy.tenant!r} is not your tenant — an admin manages tenant {tenant!r} only")
    doc = PolicyFile(policies=[policy])
    _check_caveats(doc, attribute_keys)
    if require_scopes and (unscoped := unscoped_rules(doc)):
        raise PolicyError(f"{unscoped[0]} (mint.require_scopes is on)")
    return policy


def attribute_caveat_keys(path: str | Path, default_tenant: str | None = None) -> list[str]:
    """The attribute caveats the policies under `path` set (what authz.attributes must declare for them)."""
    keys = {
        key
        for file in policy_files(Path(path))
        for policy in _read(file, default_tenant)
        for rule in policy.trust_rules
        for key in rule.issue.caveats
        if key not in BUILTIN
    }
    return sorted(keys)


def per_token_budgets(policies: Sequence[TrustPolicy]) -> list[str]:
    """Rules whose budget is per token: every exchange (a refresh too) brings a fresh one — no ceiling."""
    return [
        f"policy {policy.name}: trust_rules.{index} has budget_per: token, so every exchange (and every refresh) "
        "issues a fresh budget and the rule sets no ceiling — use budget_per: identity (the default)"
        for policy in policies
        for index, rule in enumerate(policy.trust_rules)
        if rule.issue.budget_per == "token" and (rule.issue.budget_credits or rule.issue.budget_window)
    ]


def unscoped_rules(doc: PolicyFile) -> list[str]:
    """Rules that issue no `scopes`: their tokens pass every route's scope check (rarely what was meant)."""
    return [
        f"policy {policy.name}: trust_rules.{index} issues no scopes, so its tokens pass every route's scope check"
        ' — add issue.scopes (e.g. ["api:read"])'
        for policy in doc.policies
        for index, rule in enumerate(policy.trust_rules)
        if not rule.issue.scopes
    ]


def load_policies(
    path: str | Path,
    attribute_keys: frozenset[str] = frozenset(),
    default_tenant: str | None = None,
    *,
    require_scopes: bool = False,
) -> PolicyFile:
    """Every policy under `path` (a file or a directory), in order. `require_scopes`: a rule without scopes is
    an error (mint.require_scopes), not a warning."""
    root = Path(path)
    if not root.exists():
        raise PolicyError(f"{root}: cannot read trust policies (no such file or directory)")
    policies = [policy for file in policy_files(root) for policy in _read(file, default_tenant)]
    try:
        doc = PolicyFile(policies=policies)
    except ValidationError as exc:
        raise PolicyError(f"{root}: {exc.errors()[0]['msg'].removeprefix('Value error, ')}") from None
    _check_caveats(doc, attribute_keys)
    if require_scopes and (unscoped := unscoped_rules(doc)):
        raise PolicyError(f"{root}: {unscoped[0]} (mint.require_scopes is on)")
    return doc


class PolicyStore:
    """The current trust policies: the files' (reloaded when a file changes; a bad edit keeps the last good set),
    then those managed by API (mint_server/policies/managed.py), which may not reuse a file policy's name."""

    def __init__(
        self,
        path: Path | None,
        attribute_keys: frozenset[str],
        default_tenant: str | None = None,
        *,
        require_scopes: bool = False,
        shared_issuers: Sequence[SharedIssuer] = (),
    ) -> None:
        self._path = path
        self._attribute_keys = attribute_keys
        self._default_tenant = default_tenant
        self._require_scopes = require_scopes
        self._shared = tuple(shared_issuers)
        self._files = self._load() if path else PolicyFile(policies=[])
        self._managed: list[TrustPolicy] = []
        self.current = self._files
        self.directory = IssuerDirectory(self.current.policies, self._shared)
        self._stamp = policies_stamp(path) if path else None

    @property
    def shared_issuers(self) -> tuple[SharedIssuer, ...]:
        return self._shared

    @property
    def file_policy_keys(self) -> frozenset[tuple[str, str]]:
        """(tenant, name) of every file policy: names are per tenant."""
        return frozenset((p.tenant, p.name) for p in self._files.policies)

    def use_managed(self, policies: list[TrustPolicy]) -> None:
        self._managed = policies
        self._combine()

    def _combine(self) -> None:
        taken = self.file_policy_keys
        # the API refuses those; a file added later wins
        managed = [p for p in self._managed if (p.tenant, p.name) not in taken]
        self.current = PolicyFile(policies=[*self._files.policies, *managed])
        self.directory = IssuerDirectory(self.current.policies, self._shared)

    def _load(self) -> PolicyFile:
        assert self._path is not None
        doc = load_policies(self._path, self._attribute_keys, self._default_tenant, require_scopes=self._require_scopes)
        file_conflicts(doc.policies, self._shared, self._path)
        for warning in unscoped_rules(doc):
            log.warning("policy_rule_unscoped", detail=warning)
        for warning in per_token_budgets(doc.policies):
            log.warning("policy_budget_per_token", detail=warning)
        return doc

    def reload_if_changed(self) -> bool:
        if self._path is None:
            return False
        stamp = policies_stamp(self._path)
        if stamp == self._stamp or stamp is None:
            return False
        self._stamp = stamp
        try:
            self._files = self._load()
        except PolicyError as exc:
            log.error("policy_reload_failed", detail=str(exc))
            return False
        self._combine()
        return True
