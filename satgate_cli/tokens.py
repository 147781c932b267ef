"""`satgate token`: mint, attenuate, delegate, inspect and revoke tokens."""

from __future__ import annotations

import asyncio
import json
import sys

import click

from satgate.ledger import LedgerUnavailable
from satgate.timefmt import format_utc
from satgate_cli.common import (
    _audit,
    _config,
    _keyring,
    _read_token,
    _standard_caveats,
    budget_window_option,
    config_option,
    parse_duration,
)


def _register(config, tenant: str, minted, caveats: list[tuple[str, str]], budget: int | None) -> None:
    """In the token registry the admin API lists (SPEC: Control plane), as the Mint's own tokens are."""
    import time  # noqa: PLC0415

    from satgate.control_plane.store import STORE_ERRORS, ControlPlaneStore, TokenRecord  # noqa: PLC0415
    from satgate.tokens.delegate import own_buckets  # noqa: PLC0415
    from satgate.tokens.verify import TokenVerifier  # noqa: PLC0415

    buckets = TokenVerifier(_keyring(config), attribute_keys=config.authz.attributes).verify(minted.token).buckets
    values = dict(caveats)
    window = values.get("budget_window")
    bucket_id, window_bucket_id = own_buckets(buckets, budget=budget is not None, window=window is not None)
    record = TokenRecord(
        tenant=tenant,
        token_id=minted.identifier.token_id,
        issued_at=time.time(),
        source="cli",
        policy=None,
        subject=None,
        label=values.get("label"),
        budget_credits=budget,
        bucket_id=bucket_id,
        scopes=values.get("scope"),
        expires_at=values.get("expires"),
        budget_window=window,
        window_bucket_id=window_bucket_id,
    )

    async def register() -> None:
        store = await ControlPlaneStore.open(config.control_plane)
        try:
            await store.record_token(record)
        finally:
            await store.close()

    try:
        asyncio.run(register())
    except STORE_ERRORS as exc:
        raise click.ClickException(f"the token is valid, but the registry did not take it: {exc}") from None


@click.group()
def token() -> None:
    """Mint, attenuate, inspect and revoke tokens."""


@token.command("mint")
@config_option
@click.option("--tenant", required=True)
@click.option("--scope", help="comma list of scope patterns, e.g. api:read,mcp:*")
@click.option("--budget", type=click.IntRange(1, 10**15), help="credits")
@budget_window_option
@click.option("--ttl", help="lifetime, e.g. 90m, 8h, 7d  [default: mint.max_ttl, at most that]")
@click.option("--no-expiry", is_flag=True, help="a token that never expires (revoke it when done)")
@click.option("--caveat", "extra", multiple=True, help="extra caveat key=value (repeatable)")
@click.option("--json", "as_json", is_flag=True, help="print a JSON object instead of the bare token")
def token_mint(config_path, tenant, scope, budget, window, ttl, no_expiry, extra, as_json) -> None:
    """Mint a token from the keyring (offline; no server needed)."""
    from satgate.tokens.mint import mint as mint_token  # noqa: PLC0415

    config = _config(config_path)
    ttl = _bounded_ttl(ttl, no_expiry, config.mint.max_ttl, extra)
    caveats = _standard_caveats(scope, budget, ttl, extra, window)
    for warning in _reach_warnings(caveats, no_expiry):
        click.echo(f"warning: {warning}", err=True)
    try:
        minted = mint_token(_keyring(config), tenant, caveats, attribute_keys=config.authz.attributes)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    _audit(
        config,
        "mint",
        tenant=tenant,
        token_id=minted.identifier.token_id,
        details={"caveats": [key for key, _ in caveats]},
    )
    _register(config, tenant, minted, caveats, budget)
    if as_json:
        click.echo(
            json.dumps(
                {
                    "token": minted.token,
                    "token_id": minted.identifier.token_id,
                    "tenant": tenant,
                    "caveats": [f"{k} = {v}" for k, v in caveats],
                }
            )
        )
    else:
        click.echo(minted.token)


def _bounded_ttl(ttl: str | None, no_expiry: bool, max_ttl: str, extra: tuple[str, ...]) -> str | None:
    """The lifetime to mint with: never more than mint.max_ttl; no expiry only when asked for by name."""
    if any(item.partition("=")[0].strip() == "expires" for item in extra):
        raise click.BadParameter("give the lifetime with --ttl (bounded by mint.max_ttl)", param_hint="--caveat")
    if no_expiry:
        if ttl:
            raise click.UsageError("give --ttl or --no-expiry, not both")
        return None
    if ttl is None:
        return max_ttl
    if parse_duration(ttl) > parse_duration(max_ttl):
        raise click.BadParameter(
            f"{ttl} is longer than mint.max_ttl ({max_ttl}); raise mint.max_ttl in satgate.yaml, or give "
            "--no-expiry for a token that never expires",
            param_hint="--ttl",
        )
    return ttl


def _reach_warnings(caveats: list[tuple[str, str]], no_expiry: bool) -> list[str]:
    keys = {key for key, _ in caveats}
    warnings = []
    if no_expiry:
        warnings.append("no expiry: this token works until it is revoked")
    if "scope" not in keys:
        warnings.append("no --scope: this token passes every route's scope check (it reaches every route)")
    if not keys & {"budget", "budget_window"}:
        warnings.append("no --budget: this token spends without limit on every route that charges")
    return warnings


@token.command("attenuate")
@config_option
@click.argument("token_text", metavar="TOKEN")
@click.option("--scope")
@click.option("--budget", type=click.IntRange(1, 10**15))
@budget_window_option
@click.option("--ttl")
@click.option("--caveat", "extra", multiple=True)
def token_attenuate(config_path, token_text, scope, budget, window, ttl, extra) -> None:
    """Add caveats to TOKEN (offline, needs no key). The child can only do less than its parent."""
    from satgate.tokens.mint import attenuate  # noqa: PLC0415
    from satgate.tokens.wire import MalformedToken  # noqa: PLC0415

    config = _config(config_path)
    caveats = _standard_caveats(scope, budget, ttl, extra, window)
    if not caveats:
        raise click.UsageError("give at least one of --scope, --budget, --budget-window, --ttl, --caveat")
    try:
        click.echo(attenuate(_read_token(token_text), caveats, attribute_keys=config.authz.attributes))
    except (MalformedToken, ValueError) as exc:
        raise click.ClickException(str(exc)) from None


@token.command("delegate")
@config_option
@click.argument("token_text", metavar="TOKEN")
@click.option("--budget", type=click.IntRange(1, 10**15))
@budget_window_option
@click.option("--scope", help="comma list of scope patterns")
@click.option("--ttl", default="1h", show_default=True)
@click.option("--label")
@click.option("--json", "as_json", is_flag=True, help="print token, delegation_id and expires_at as JSON")
def token_delegate(config_path, token_text, budget, window, scope, ttl, label, as_json) -> None:
    """Delegate offline: a child of TOKEN with a fresh delegation id (revocable on its own). Needs no key; the
    Mint's delegation tree does not record it (use POST /api/mint/delegate for that). The child expires with
    its parent at the latest."""
    from satgate.tokens.delegate import delegate  # noqa: PLC0415
    from satgate.tokens.wire import MalformedToken  # noqa: PLC0415

    config = _config(config_path)
    try:
        child = delegate(
            _read_token(token_text),
            ttl_seconds=parse_duration(ttl),
            budget_credits=budget,
            budget_window=window,
            scopes=scope.split(",") if scope else (),
            label=label,
            attribute_keys=config.authz.attributes,
        )
    except (MalformedToken, ValueError) as exc:
        raise click.ClickException(str(exc)) from None
    if not as_json:
        click.echo(child.token)
        return
    click.echo(
        json.dumps(
            {"token": child.token, "delegation_id": child.delegation_id, "expires_at": format_utc(child.expires_at)}
        )
    )


@token.command("inspect")
@config_option
@click.argument("token_text", metavar="TOKEN")
def token_inspect(config_path, token_text) -> None:
    """Verify TOKEN against the keyring and show its caveats, revocation and remaining credits."""
    from satgate.ledger.url import open_ledger  # noqa: PLC0415
    from satgate.tokens.verify import TokenRejected, TokenVerifier  # noqa: PLC0415

    config = _config(config_path)
    verifier = TokenVerifier(_keyring(config), attribute_keys=config.authz.attributes)
    try:
        verified = verifier.verify(_read_token(token_text))
    except TokenRejected as exc:
        click.echo(json.dumps({"valid": False, "error": exc.denial.error, "message": exc.denial.message}))
        sys.exit(1)

    async def ledger_view() -> tuple[bool, int | None]:
        ledger = open_ledger(config.ledger)
        try:
            return (
                await ledger.is_revoked(verified.tenant, verified.revocation_ids),
                await ledger.remaining(verified.tenant, verified.buckets),
            )
        finally:
            await ledger.close()

    try:
        revoked, remaining = asyncio.run(ledger_view())
    except LedgerUnavailable as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(
        json.dumps(
            {
                "valid": not revoked,
                "revoked": revoked,
                "tenant": verified.tenant,
                "token_id": verified.token_id,
                "kid": verified.identifier.kid,
                "caveats": list(verified.caveat_texts),
                "revocation_ids": list(verified.revocation_ids),
                "buckets": [{"bucket_id": b.bucket_id, "limit": b.limit} for b in verified.buckets],
                "remaining": remaining,
            },
            indent=2,
        )
    )


@token.command("revoke")
@config_option
@click.argument("token_text", metavar="TOKEN", required=False)
@click.option("--id", "revocation_id", help="a token_id or delegation id (instead of TOKEN)")
@click.option("--tenant", help="tenant of --id")
@click.option("--reason", default="")
@click.option("--pre-revoke", is_flag=True, help="revoke an --id nothing here recorded (a token not issued yet)")
def token_revoke(config_path, token_text, revocation_id, tenant, reason, pre_revoke) -> None:
    """Revoke TOKEN (its own id: the token and every token attenuated or delegated from it), or an --id this
    deployment recorded (a minted, exchanged or delegated token)."""
    import re  # noqa: PLC0415

    from satgate.ledger.url import open_ledger  # noqa: PLC0415
    from satgate.tokens.verify import TokenRejected, TokenVerifier  # noqa: PLC0415

    config = _config(config_path)
    recorded: str | None
    if token_text:
        try:
            verified = TokenVerifier(_keyring(config), attribute_keys=config.authz.attributes).verify(
                _read_token(token_text)
            )
        except TokenRejected as exc:
            raise click.ClickException(f"cannot revoke: {exc.denial.message}") from None
        # its most specific id: a delegated child's own delegation id, not its parent's (that is --id's job)
        tenant, revocation_id = verified.tenant, verified.revocation_ids[-1]
        recorded = "delegation" if len(verified.revocation_ids) > 1 else "token"
    elif not (revocation_id and tenant):
        raise click.UsageError("give TOKEN, or --id with --tenant")
    elif not re.fullmatch(r"[0-9a-f]{32}", revocation_id):
        raise click.BadParameter("must be 32 lowercase hex", param_hint="--id")
    else:
        recorded = _recorded_as(config, tenant, revocation_id)
        if recorded is None and not pre_revoke:
            raise click.ClickException(
                f"nothing this deployment recorded carries id {revocation_id} in tenant {tenant!r} (no token minted, "
                "exchanged or delegated with it): check --id and --tenant, or give --pre-revoke to revoke it anyway"
            )

    async def do_revoke() -> bool:
        ledger = open_ledger(config.ledger)
        try:
            return await ledger.revoke(tenant, revocation_id, reason)
        finally:
            await ledger.close()

    try:
        fresh = asyncio.run(do_revoke())
    except LedgerUnavailable as exc:
        raise click.ClickException(str(exc)) from None
    details = {"reason": reason[:200], "via": "cli", "recorded_as": recorded}
    _audit(config, "revoke", tenant=tenant, token_id=revocation_id, details=details)
    click.echo(
        json.dumps({"revoked": revocation_id, "tenant": tenant, "recorded_as": recorded, "already_revoked": not fresh})
    )


def _recorded_as(config, tenant: str, revocation_id: str) -> str | None:
    from satgate.control_plane.store import ControlPlaneStore  # noqa: PLC0415
    from satgate.control_plane.url import sqlite_file  # noqa: PLC0415
    from satgate.revocations import recorded_as  # noqa: PLC0415

    async def lookup() -> str | None:
        audit = config.open_audit_log()
        local = sqlite_file(config.control_plane)
        fresh = local is not None and not local.exists()  # no Mint ever ran here: nothing recorded in it
        store = None if fresh else await ControlPlaneStore.open(config.control_plane)
        try:
            return await recorded_as(tenant, revocation_id, (r for _s, r, _p, _h in await audit.records()), store)
        finally:
            await audit.close()
            if store is not None:
                await store.close()

    try:
        return asyncio.run(lookup())
    except LedgerUnavailable as exc:
        raise click.ClickException(str(exc)) from None
