"""Trust policies: the list, one policy with its history as diffs, and — for admins, on API-managed policies —
create, edit, enable/disable and delete, validated exactly as the admin API and policy files are; revoke."""

from __future__ import annotations

import difflib
from typing import Any

import yaml
from aiohttp import web

from mint_server.console.web import ADMIN_KEY, checked_form, chrome_of, handler, page, refused_page, see_other, session
from mint_server.exchange.service import ExchangeDenied
from mint_server.policies.managed import Actor, PolicyRefused
from satgate.tokens.verify import VerifiedToken

MAX_DOCUMENT = 64 * 1024
EXAMPLE = """\
name: ci-deploys
provider: oidc
issuer: https://token.actions.githubusercontent.com
audience: satgate
trust_rules:
  - match:
      claims: {repository: "acme/*", ref: refs/heads/main}
    issue: {budget_credits: 100, scopes: ["api:read"], ttl: 1h}
"""


def as_yaml(document: dict[str, Any] | None) -> str:
    return "" if document is None else yaml.safe_dump(document, sort_keys=False, allow_unicode=True)


def diff_lines(before: dict[str, Any] | None, after: dict[str, Any] | None) -> list[tuple[str, str]]:
    """(kind, line) of a unified diff of the two documents as YAML: kind is "add", "remove", "hunk" or "same"."""
    lines = difflib.unified_diff(as_yaml(before).splitlines(), as_yaml(after).splitlines(), lineterm="", n=2)
    kinds = {"+": "add", "-": "remove", "@": "hunk"}
    return [(kinds.get(line[:1], "same"), line) for line in list(lines)[2:]]  # past the ---/+++ header


def parsed(text: str) -> tuple[object, str | None]:
    """The document in the form's YAML, or the reason it is not one."""
    if len(text) > MAX_DOCUMENT:
        return None, f"the policy is {len(text)} characters; at most {MAX_DOCUMENT}"
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
        return None, f"not YAML: {where}{getattr(exc, 'problem', None) or exc}"
    if not isinstance(document, dict):
        return None, "the policy must be a YAML mapping (name: …, provider: …, trust_rules: …)"
    return document, None


def _actor(token: VerifiedToken) -> Actor:
    return Actor(token.tenant, token.token_id)


@handler
async def policies_page(request: web.Request) -> web.StreamResponse:
    token = await session(request, "ListPolicies")
    listed = await request.app[ADMIN_KEY].managed.list_policies(token.tenant)
    return page(request, "policies.html", policies=listed, **chrome_of(request, token))


async def _policy_view(
    request: web.Request,
    token: VerifiedToken,
    name: str,
    *,
    status: int = 200,
    text: str | None = None,
    error: str = "",
) -> web.StreamResponse:
    managed = request.app[ADMIN_KEY].managed
    try:
        policy = await managed.get(token.tenant, name)
    except PolicyRefused as refused:
        return refused_page(request, refused.status, refused.message, token)
    history: list[dict[str, Any]] = []
    if not policy["read_only"]:
        versions = await managed.history(token.tenant, name)
        previous: dict[str, Any] | None = None
        for version in versions:
            history.append({**version, "diff": diff_lines(previous, version["document"])})
            previous = version["document"]
        history.reverse()  # newest first
    return page(
        request,
        "policy.html",
        status,
        policy=policy,
        document=as_yaml(policy["document"]),
        text=as_yaml(policy["document"]) if text is None else text,
        error=error,
        history=history,
        **chrome_of(request, token),
    )


@handler
async def policy_page(request: web.Request) -> web.StreamResponse:
    token = await session(request, "GetPolicy")
    return await _policy_view(request, token, request.match_info["name"])


@handler
async def update_policy(request: web.Request) -> web.StreamResponse:
    token, form = await checked_form(request, "UpdatePolicy")
    name, text = request.match_info["name"], str(form.get("document", ""))
    document, error = parsed(text)
    if error is None:
        try:
            expected = int(str(form.get("expected_version", "")))
        except ValueError:
            expected = None
        try:
            await request.app[ADMIN_KEY].managed.update(_actor(token), name, document, expected)
        except PolicyRefused as refused:
            return await _policy_view(request, token, name, status=refused.status, text=text, error=refused.message)
        return see_other(f"/console/policies/{name}")
    return await _policy_view(request, token, name, status=400, text=text, error=error)


@handler
async def new_policy_form(request: web.Request) -> web.StreamResponse:
    token = await session(request, "CreatePolicy")
    return page(request, "policy_new.html", text=EXAMPLE, error="", **chrome_of(request, token))


@handler
async def create_policy(request: web.Request) -> web.StreamResponse:
    token, form = await checked_form(request, "CreatePolicy")
    text = str(form.get("document", ""))
    document, error = parsed(text)
    if error is None:
        try:
            created = await request.app[ADMIN_KEY].managed.create(_actor(token), document)
        except PolicyRefused as refused:
            status, error = refused.status, refused.message
        else:
            return see_other(f"/console/policies/{created['name']}")
    else:
        status = 400
    return page(request, "policy_new.html", status, text=text, error=error, **chrome_of(request, token))


async def _change(request: web.Request, operation: str) -> web.StreamResponse:
    token, form = await checked_form(request, operation)
    name, managed, actor = request.match_info["name"], request.app[ADMIN_KEY].managed, _actor(token)
    try:
        if operation == "DeletePolicy":
            if not form.get("confirm"):
                return refused_page(request, 400, "confirm: tick the box to confirm the deletion", token)
            await managed.delete(actor, name)
            return see_other("/console/policies")
        await managed.set_enabled(actor, name, operation == "EnablePolicy")
    except PolicyRefused as refused:
        return refused_page(request, refused.status, refused.message, token)
    back = f"/console/policies/{name}"  # the policy's page when the form came from there, else the list
    return see_other(back if form.get("back") == back else "/console/policies")


@handler
async def enable_policy(request: web.Request) -> web.StreamResponse:
    return await _change(request, "EnablePolicy")


@handler
async def disable_policy(request: web.Request) -> web.StreamResponse:
    return await _change(request, "DisablePolicy")


@handler
async def delete_policy(request: web.Request) -> web.StreamResponse:
    return await _change(request, "DeletePolicy")


@handler
async def revoke_policy(request: web.Request) -> web.StreamResponse:
    """For good (SPEC v2.2): the policy stays listed as revoked; its tokens too when the box is ticked."""
    token, form = await checked_form(request, "RevokePolicy")
    name = request.match_info["name"]
    if not form.get("confirm"):
        return refused_page(request, 400, "confirm: tick the box — a revocation cannot be undone", token)
    try:
        await request.app[ADMIN_KEY].revoke_policy(
            token, name, str(form.get("reason", ""))[:200], revoke_tokens=bool(form.get("revoke_tokens"))
        )
    except ExchangeDenied as refused:
        return refused_page(request, refused.status, refused.message, token)
    return see_other(f"/console/policies/{name}")
