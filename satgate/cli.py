"""The `satgate` command: run the servers, the whole local stack, and work with tokens."""

from __future__ import annotations

import asyncio
import json
import shlex
import sys
import time
from pathlib import Path
from typing import Any

import click

from satgate import timefmt
from satgate.config import Config, ConfigError, load_config
from satgate.keyring import KeyringError, load_keyring, load_or_create_keyring
from satgate.ledger import LedgerUnavailable
from satgate.ledger.marker import REDIS_SLOTS
from satgate.timefmt import format_utc


def _config(path: str | None):
    try:
        return load_config(path)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None


def _keyring(config):
    try:
        return load_keyring(config.keyring, group_readable=config.keyring_group_readable)
    except KeyringError as exc:
        raise click.ClickException(str(exc)) from None


def _audit(config: Config, event_type: str, **fields: Any) -> None:
    """Control-plane actions taken from the CLI land in the same hash-chained log as the Mint's."""
    from satgate.audit import AuditEvent, open_audit_log  # noqa: PLC0415

    async def append() -> None:
        log = open_audit_log(config.ledger, config.mint.audit_log)  # in the loop that uses it (Redis clients bind)
        try:
            await log.append(AuditEvent(type=event_type, actor="cli", **fields))
        finally:
            await log.close()

    asyncio.run(append())


def parse_duration(text: str) -> int:
    try:
        return timefmt.parse_duration(text)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


def _caveat_pairs(items: tuple[str, ...]) -> list[tuple[str, str]]:
    pairs = []
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            raise click.BadParameter(f"{item!r} is not key=value", param_hint="--caveat")
        pairs.append((key.strip(), value.strip()))
    return pairs


def _standard_caveats(scope: str | None, budget: int | None, ttl: str | None, extra: tuple[str, ...]):
    caveats: list[tuple[str, str]] = []
    if ttl:
        caveats.append(("expires", format_utc(time.time() + parse_duration(ttl))))
    if scope:
        caveats.append(("scope", scope))
    if budget is not None:
        caveats.append(("budget", str(budget)))
    return caveats + _caveat_pairs(extra)


config_option = click.option(
    "--config",
    "-c",
    "config_path",
    type=click.Path(dir_okay=False),
    envvar="SATGATE_CONFIG",
    help="satgate.yaml (default: embedded defaults, state in ./.satgate)",
)


@click.group()
@click.version_option(package_name="satgate-envoy")
def cli() -> None:
    """SatGate for Envoy: economic access control with macaroon tokens."""


@cli.command()
@config_option
@click.option("--workers", type=click.IntRange(1, 64), help="worker processes sharing the port (SO_REUSEPORT)")
@click.option("--listen", help="host:port for the gRPC server")
def authz(config_path: str | None, workers: int | None, listen: str | None) -> None:
    """Run the Envoy ext_authz gRPC server."""
    from authz_server.server import run  # noqa: PLC0415 - grpc server only when serving

    config = _config(config_path)
    updates = {k: v for k, v in {"workers": workers, "listen": listen}.items() if v is not None}
    if updates:
        try:
            config = config.model_copy(
                update={"authz": config.authz.model_validate({**config.authz.model_dump(), **updates})}
            )
        except ValueError as exc:
            raise click.ClickException(f"authz: {exc}") from None
    _keyring(config)  # refuse to start on a bad keyring, with its own message
    try:
        run(config)
    except OSError as exc:  # a port in use: say which setting, not a traceback
        raise click.ClickException(str(exc)) from None


@cli.command()
@config_option
def mint(config_path: str | None) -> None:
    """Run the Mint: HTTP/JSON and gRPC."""
    from mint_server.app import check_startup, run  # noqa: PLC0415
    from mint_server.policies import PolicyError  # noqa: PLC0415
    from satgate.logs import configure_logging  # noqa: PLC0415

    config = _config(config_path)
    _keyring(config)
    try:
        check_startup(config)
    except PolicyError as exc:
        raise click.ClickException(str(exc)) from None
    configure_logging(config.log_level, component="mint")
    run(config)


@cli.command()
@click.argument("target")
@click.option("--service", default="", help="gRPC service name (default: the whole server)")
def health(target: str, service: str) -> None:
    """Exit 0 when the gRPC server at TARGET (host:port) reports SERVING: for container health checks."""
    from satgate.devstack import grpc_serving  # noqa: PLC0415

    if not grpc_serving(target, service):
        raise click.ClickException(f"{target}: not serving")
    click.echo(f"{target}: serving")


@cli.command("demo-upstream", hidden=True)
@click.option("--host", default="127.0.0.1")
@click.option("--port", type=int, default=8000)
def demo_upstream(host: str, port: int) -> None:
    """Echo server used by `satgate up`."""
    from satgate.demo_upstream import run  # noqa: PLC0415

    run(host, port)


@cli.command("demo-idp", hidden=True)
@click.option("--state-file", type=click.Path(dir_okay=False, exists=True), required=True)
@click.option("--host", default="127.0.0.1")
@click.option("--port", type=int, default=8090)
def demo_idp(state_file: str, host: str, port: int) -> None:
    """The local OIDC issuer used by `satgate up`."""
    from satgate.demo_idp import run  # noqa: PLC0415

    run(Path(state_file), host, port)


@cli.command("demo-jwt")
@click.option("--state-dir", type=click.Path(file_okay=False), default=".satgate", show_default=True)
@click.option("--sub", "subject", required=True, help="subject claim, e.g. agent-1")
@click.option("--aud", "audience", default="satgate", show_default=True)
@click.option("--ttl", default="10m", show_default=True)
def demo_jwt(state_dir: str, subject: str, audience: str, ttl: str) -> None:
    """Print a JWT from the demo issuer of `satgate up`, to exchange at the Mint."""
    from satgate.demo_idp import DemoIdp  # noqa: PLC0415

    path = Path(state_dir) / "demo-idp.json"
    if not path.exists():
        raise click.ClickException(f"{path} not found: start the stack with 'satgate up' first")
    click.echo(DemoIdp.load(path).token(subject, audience, ttl=parse_duration(ttl)))


@cli.group()
def keys() -> None:
    """Manage the keyring."""


@keys.command("init")
@config_option
def keys_init(config_path: str | None) -> None:
    """Create the keyring (mode 0600) if it does not exist."""
    config = _config(config_path)
    try:
        _, created = load_or_create_keyring(config.keyring)
    except KeyringError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"{'created' if created else 'exists'}: {config.keyring}")


@keys.command("rotate")
@config_option
@click.option("--kid", help="name of the new key (default: the next free k<n>)")
def keys_rotate(config_path: str | None, kid: str | None) -> None:
    """Add a key and make it active. Old keys keep verifying until retired; running servers pick the change
    up within seconds."""
    from satgate.keyring import rotate, write_keyring  # noqa: PLC0415

    config = _config(config_path)
    current = _keyring(config)
    try:
        rotated = rotate(current, kid)
    except KeyringError as exc:
        raise click.ClickException(str(exc)) from None
    write_keyring(config.keyring, rotated)
    _audit(config, "key_rotation", details={"active_kid": rotated.active_kid, "previous_kid": current.active_kid})
    click.echo(json.dumps({"active_kid": rotated.active_kid, "kids": sorted(rotated.keys)}))


@keys.command("retire")
@config_option
@click.argument("kid")
def keys_retire(config_path: str | None, kid: str) -> None:
    """Remove KID: its tokens stop verifying (unknown_key) once the servers reload, within seconds."""
    from satgate.keyring import retire, write_keyring  # noqa: PLC0415

    config = _config(config_path)
    try:
        retired = retire(_keyring(config), kid)
    except KeyringError as exc:
        raise click.ClickException(str(exc)) from None
    write_keyring(config.keyring, retired)
    _audit(config, "key_rotation", details={"retired_kid": kid, "active_kid": retired.active_kid})
    click.echo(json.dumps({"active_kid": retired.active_kid, "kids": sorted(retired.keys)}))


@cli.group()
def ledger() -> None:
    """The ledger store (budgets, revocations, debit records)."""


@ledger.command("init")
@click.option("--config", "config_path", type=click.Path(), default=None)
def ledger_init(config_path: str | None) -> None:
    """Mark a new ledger as SatGate's. Servers refuse a store without this marker (a deleted, emptied or
    wrong-path SQLite file, a Redis restarted without its data), since its empty budgets would read as unspent.
    Idempotent: an initialised ledger is left as it is. After a data loss, restore the store first."""
    from satgate.ledger.marker import init_ledger  # noqa: PLC0415

    config = _config(config_path)
    try:
        where, written = asyncio.run(init_ledger(config.ledger))
    except LedgerUnavailable as exc:
        raise click.ClickException(str(exc)) from None
    if written == 0:
        click.echo(f"ledger at {where} is already initialised")
    elif written in {1, REDIS_SLOTS}:
        click.echo(f"initialised the ledger at {where}")
    else:  # some slots lost their marker: a Redis Cluster master restarted empty, then this was run
        click.echo(f"initialised the ledger at {where}: {written} of {REDIS_SLOTS} hash slots had no marker")


@cli.group()
def token() -> None:
    """Mint, attenuate, inspect and revoke tokens."""


@token.command("mint")
@config_option
@click.option("--tenant", required=True)
@click.option("--scope", help="comma list of scope patterns, e.g. api:read,mcp:*")
@click.option("--budget", type=click.IntRange(1, 10**15), help="credits")
@click.option("--ttl", help="lifetime, e.g. 90m, 8h, 7d")
@click.option("--caveat", "extra", multiple=True, help="extra caveat key=value (repeatable)")
@click.option("--json", "as_json", is_flag=True, help="print a JSON object instead of the bare token")
def token_mint(config_path, tenant, scope, budget, ttl, extra, as_json) -> None:
    """Mint a token from the keyring (offline; no server needed)."""
    from satgate.tokens.mint import mint as mint_token  # noqa: PLC0415

    config = _config(config_path)
    caveats = _standard_caveats(scope, budget, ttl, extra)
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


@token.command("attenuate")
@config_option
@click.argument("token_text", metavar="TOKEN")
@click.option("--scope")
@click.option("--budget", type=click.IntRange(1, 10**15))
@click.option("--ttl")
@click.option("--caveat", "extra", multiple=True)
def token_attenuate(config_path, token_text, scope, budget, ttl, extra) -> None:
    """Add caveats to TOKEN (offline, needs no key). The child can only do less than its parent."""
    from satgate.tokens.mint import attenuate  # noqa: PLC0415
    from satgate.tokens.wire import MalformedToken  # noqa: PLC0415

    config = _config(config_path)
    caveats = _standard_caveats(scope, budget, ttl, extra)
    if not caveats:
        raise click.UsageError("give at least one of --scope, --budget, --ttl, --caveat")
    try:
        click.echo(attenuate(_read_token(token_text), caveats, attribute_keys=config.authz.attributes))
    except (MalformedToken, ValueError) as exc:
        raise click.ClickException(str(exc)) from None


def _read_token(text: str) -> str:
    return sys.stdin.read().strip() if text == "-" else text.strip()


@token.command("delegate")
@config_option
@click.argument("token_text", metavar="TOKEN")
@click.option("--budget", type=click.IntRange(1, 10**15))
@click.option("--scope", help="comma list of scope patterns")
@click.option("--ttl", default="1h", show_default=True)
@click.option("--label")
def token_delegate(config_path, token_text, budget, scope, ttl, label) -> None:
    """Delegate offline: a child of TOKEN with a fresh delegation id (revocable on its own). Needs no key; the
    Mint's delegation tree does not record it (use POST /api/mint/delegate for that)."""
    from satgate.tokens.delegate import delegate  # noqa: PLC0415
    from satgate.tokens.wire import MalformedToken  # noqa: PLC0415

    config = _config(config_path)
    try:
        child = delegate(
            _read_token(token_text),
            ttl_seconds=parse_duration(ttl),
            budget_credits=budget,
            scopes=scope.split(",") if scope else (),
            label=label,
            attribute_keys=config.authz.attributes,
        )
    except (MalformedToken, ValueError) as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(
        json.dumps(
            {"token": child.token, "delegation_id": child.delegation_id, "expires_at": format_utc(child.expires_at)}
        )
    )


@cli.command()
@config_option
@click.option("--by", default="token", show_default=True, help="token, tenant or attr:<key> (e.g. attr:department)")
@click.option("--since", default="24h", show_default=True, help="how far back, e.g. 90m, 7d")
@click.option("--json", "as_json", is_flag=True)
def usage(config_path, by, since, as_json) -> None:
    """Requests, allowed, denied and credits per token, tenant or declared attribute."""
    from satgate.usage import UsageStore  # noqa: PLC0415

    config = _config(config_path)
    store = UsageStore(config.authz.usage.path)
    try:
        rows = store.report(by, time.time() - parse_duration(since))
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--by") from None
    finally:
        store.close()
    if as_json:
        click.echo(json.dumps(rows))
        return
    click.echo(f"{by:34s} {'requests':>9s} {'allowed':>8s} {'denied':>7s} {'credits':>9s}")
    for row in rows:
        click.echo(
            f"{row['key'] or '-':34s} {row['requests']:9d} {row['allowed']:8d} {row['denied']:7d} {row['credits']:9d}"
        )


@cli.group()
def audit() -> None:
    """Export and verify the hash-chained audit log."""


@audit.command("export")
@config_option
@click.option("--format", "fmt", type=click.Choice(["json", "csv"]), default="json", show_default=True)
@click.option("--tenant", help="only this tenant's records")
def audit_export(config_path, fmt, tenant) -> None:
    """Print every record (JSON lines or CSV), with its chain hash."""
    from satgate.audit import audit_csv, open_audit_log  # noqa: PLC0415

    config = _config(config_path)
    log = open_audit_log(config.ledger, config.mint.audit_log)
    try:
        records = [
            {"seq": seq, **record, "hash": digest}
            for seq, record, _prev, digest in log.records()
            if tenant is None or record.get("tenant") == tenant
        ]
    finally:
        asyncio.run(log.close())
    if fmt == "csv":
        click.echo(audit_csv(records), nl=False)
    else:
        for record in records:
            click.echo(json.dumps(record, sort_keys=True))


@audit.command("verify")
@config_option
def audit_verify(config_path) -> None:
    """Recompute the chain. Exit 1 at the first edited, removed or reordered record. Keep the printed head hash
    somewhere else: only an outside copy shows that records were cut from the end."""
    from satgate.audit import open_audit_log  # noqa: PLC0415

    config = _config(config_path)
    log = open_audit_log(config.ledger, config.mint.audit_log)
    try:
        broken = log.verify()
        records = list(log.records()) if broken is None else []
    finally:
        asyncio.run(log.close())
    if broken is not None:
        click.echo(json.dumps({"ok": False, "broken_at_seq": broken}))
        sys.exit(1)
    head = records[-1][3] if records else None
    click.echo(json.dumps({"ok": True, "records": len(records), "head": head}))


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
def token_revoke(config_path, token_text, revocation_id, tenant, reason) -> None:
    """Revoke TOKEN (its token_id: the token and every token attenuated from it), or an id."""
    import re  # noqa: PLC0415

    from satgate.ledger.url import open_ledger  # noqa: PLC0415
    from satgate.tokens.verify import TokenRejected, TokenVerifier  # noqa: PLC0415

    config = _config(config_path)
    if token_text:
        try:
            verified = TokenVerifier(_keyring(config), attribute_keys=config.authz.attributes).verify(
                _read_token(token_text)
            )
        except TokenRejected as exc:
            raise click.ClickException(f"cannot revoke: {exc.denial.message}") from None
        tenant, revocation_id = verified.tenant, verified.token_id
    elif not (revocation_id and tenant):
        raise click.UsageError("give TOKEN, or --id with --tenant")
    elif not re.fullmatch(r"[0-9a-f]{32}", revocation_id):
        raise click.BadParameter("must be 32 lowercase hex", param_hint="--id")

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
    _audit(config, "revoke", tenant=tenant, token_id=revocation_id, details={"reason": reason[:200], "via": "cli"})
    click.echo(json.dumps({"revoked": revocation_id, "tenant": tenant, "already_revoked": not fresh}))


@cli.command()
@click.option("--state-dir", type=click.Path(file_okay=False), default=".satgate", show_default=True)
@click.option("--port", type=int, default=8080, show_default=True, help="Envoy listener port")
@click.option("--admin-port", type=int, default=9901, show_default=True)
@click.option("--authz-port", type=int, default=9191, show_default=True)
@click.option("--mint-port", type=int, default=8081, show_default=True)
@click.option("--upstream-port", type=int, default=8000, show_default=True)
@click.option("--mint-grpc-port", type=int, default=8082, show_default=True)
@click.option("--idp-port", type=int, default=8090, show_default=True, help="the demo OIDC issuer")
@click.option("--metrics-port", type=int, default=9464, show_default=True, help="the authz server's /metrics")
def up(
    state_dir, port, admin_port, authz_port, mint_port, upstream_port, mint_grpc_port, idp_port, metrics_port
) -> None:
    """Start Envoy + authz + mint + a demo upstream on embedded defaults, print a working curl."""
    import signal  # noqa: PLC0415

    from satgate.devstack import Stack, StackPorts  # noqa: PLC0415
    from satgate.tokens.mint import mint as mint_token  # noqa: PLC0415

    ports = StackPorts(port, admin_port, authz_port, mint_port, upstream_port, mint_grpc_port, idp_port)
    metrics_listen = f"127.0.0.1:{metrics_port}"
    stack = Stack(Path(state_dir).resolve(), ports, config_overrides={"authz": {"metrics_listen": metrics_listen}})
    click.echo(
        f"starting envoy :{port}, authz :{authz_port}, mint :{mint_port} (gRPC :{mint_grpc_port}), "
        f"demo issuer :{idp_port}, upstream :{upstream_port} (state in {stack.state_dir})"
    )
    try:
        stack.start()
    except (RuntimeError, TimeoutError, FileNotFoundError) as exc:
        raise click.ClickException(f"stack failed to start: {exc}") from None
    config = _config(str(stack.config_path))
    demo = mint_token(
        _keyring(config),
        "demo",
        [
            ("expires", format_utc(time.time() + 86400)),
            ("scope", "api:*"),
            ("budget", "100"),
        ],
    )
    click.echo(f"\nready. A demo token (tenant demo, scope api:*, 100 credits, 24h):\n\n  {demo.token}\n")
    click.echo("try it:\n")
    click.echo(f"  curl -i -H {shlex.quote('Authorization: Bearer ' + demo.token)} {stack.url}/v1/hello\n", nl=True)
    state_flag = "" if state_dir == ".satgate" else f" --state-dir {shlex.quote(state_dir)}"
    click.echo("an agent exchanges its workload identity (here a JWT from the demo issuer) for a token:\n")
    click.echo(f"  JWT=$(satgate demo-jwt{state_flag} --sub agent-1)")
    click.echo(f'  curl -s -X POST http://127.0.0.1:{mint_port}/api/mint/exchange -H "Authorization: Bearer $JWT"\n')
    click.echo(f"metrics: http://{metrics_listen}/metrics (authz)   http://127.0.0.1:{mint_port}/metrics (mint)")
    click.echo(f"logs: {stack.state_dir}/*.log   stop: Ctrl-C", nl=True)
    sys.stdout.flush()
    stopped = False

    def _stop(*_args: object) -> None:
        nonlocal stopped
        stopped = True

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    try:
        while not stopped:
            for name, proc in stack.processes.items():
                if proc.poll() is not None:
                    click.echo(f"{name} exited ({proc.returncode}); stopping.\n{stack.log_tail(name)}", err=True)
                    stopped = True
                    break
            time.sleep(0.2)
    finally:
        stack.stop()
        click.echo("stopped.")


def main(argv: list[str] | None = None) -> None:
    cli.main(args=argv, prog_name="satgate")


if __name__ == "__main__":
    main()
