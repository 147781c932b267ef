"""The console's routes, mounted on the Mint's HTTP listener under /console."""

from __future__ import annotations

from mint_server.console import audit, pages, policies, tokens, usage
from mint_server.console.web import ADMIN_KEY, SERVICE_KEY

__all__ = ["ADMIN_KEY", "ROUTES", "SERVICE_KEY"]

ROUTES = (
    ("GET", "/console", pages.home),
    ("GET", "/console/static/{name}", pages.static),
    ("GET", "/console/sign-in", pages.sign_in_form),
    ("POST", "/console/sign-in", pages.sign_in),
    ("POST", "/console/sign-out", pages.sign_out),
    ("GET", "/console/overview", pages.overview),
    ("GET", "/console/usage", usage.usage_page),
    ("GET", "/console/tokens", tokens.tokens),
    ("GET", "/console/tokens/{token_id}", tokens.token_page),
    ("POST", "/console/tokens/{token_id}/revoke", tokens.revoke),
    ("POST", "/console/tokens/{token_id}/budget", tokens.change_budget),
    ("GET", "/console/audit", audit.audit_page),
    ("GET", "/console/audit/export", audit.audit_export),
    ("GET", "/console/policies", policies.policies_page),
    ("GET", "/console/new-policy", policies.new_policy_form),
    ("POST", "/console/new-policy", policies.create_policy),
    ("GET", "/console/policies/{name}", policies.policy_page),
    ("POST", "/console/policies/{name}", policies.update_policy),
    ("POST", "/console/policies/{name}/enable", policies.enable_policy),
    ("POST", "/console/policies/{name}/disable", policies.disable_policy),
    ("POST", "/console/policies/{name}/delete", policies.delete_policy),
    ("POST", "/console/policies/{name}/revoke", policies.revoke_policy),
)
