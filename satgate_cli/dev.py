"""The local stack and its demo parts: `satgate up`, `satgate demo-jwt` (and the hidden demo servers)."""

from __future__ import annotations

import shlex
import sys
import time
from pathlib import Path

import click
import yaml

from satgate.timefmt import format_utc
from satgate_cli.common import (
    _config,
    _keyring,
    config_option,
    parse_duration,
)


@click.command("demo-upstream", hidden=True)
@click.option("--host", default="127.0.0.1")
@click.option("--port", type=int, default=8000)
def demo_upstream(host: str, port: int) -> None:
    """Echo server used by `satgate up`."""
    from satgate_dev.demo_upstream import run  # noqa: PLC0415

    run(host, port)


@click.command("demo-idp", hidden=True)
@click.option("--state-file", type=click.Path(dir_okay=False, exists=True), required=True)
@click.option("--host", default="127.0.0.1")
@click.option("--port", type=int, default=8090)
def demo_idp(state_file: str, host: str, port: int) -> None:
    """The local OIDC issuer used by `satgate up`."""
    from satgate_dev.demo_idp import run  # noqa: PLC0415

    run(Path(state_file), host, port)


@click.command("demo-jwt")
@config_option
@click.option("--sub", "subject", required=True, help="subject claim, e.g. agent-1")
@click.option("--aud", "audience", default="satgate", show_default=True)
@click.option("--ttl", default="10m", show_default=True)
def demo_jwt(config_path: str | None, subject: str, audience: str, ttl: str) -> None:
    """Print a JWT from the demo issuer of `satgate up`, to exchange at the Mint."""
    from satgate_dev.demo_idp import DemoIdp  # noqa: PLC0415

    path = _config(config_path).state_dir / "demo-idp.json"
    if not path.exists():
        raise click.ClickException(f"{path} not found: start the stack with 'satgate up' first")
    click.echo(DemoIdp.load(path).token(subject, audience, ttl=parse_duration(ttl)))


_STACK_OWNED = {"state_dir", "keyring", "ledger"}  # what `up --config` cannot move: the stack's own files


def _own_settings(config_file: Path | None, policies: Path | None) -> tuple[dict, Path | None]:
    """The settings of `--config` to lay over the stack's, and the policies to run (`--policies`, else the
    config's mint.policies, relative to that file)."""
    if config_file is None:
        return {}, policies
    try:
        doc = yaml.safe_load(config_file.read_text()) or {}
    except yaml.YAMLError as exc:
        raise click.BadParameter(f"{config_file}: not valid YAML ({exc})", param_hint="--config") from None
    if not isinstance(doc, dict):
        raise click.BadParameter(f"{config_file}: a satgate.yaml is a mapping of sections", param_hint="--config")
    for listener in ("listen", "http_listen", "grpc_listen", "transport"):
        for section in ("authz", "mint"):
            if isinstance(doc.get(section), dict):
                doc[section].pop(listener, None)  # the stack's ports and flags decide these
    mint: dict = doc["mint"] if isinstance(doc.get("mint"), dict) else {}
    if policies is None and mint.get("policies"):
        policies = (config_file.parent / str(mint.pop("policies"))).resolve()
    mint.pop("policies", None)
    return {k: v for k, v in doc.items() if k not in _STACK_OWNED}, policies


@click.command()
@click.option(
    "--state-dir",
    type=click.Path(file_okay=False),
    default=".satgate",
    show_default=True,
    envvar="SATGATE_STATE_DIR",
    help="every file of the stack: its satgate.yaml, keyring, ledger, logs (other commands: --state-dir too)",
)
@click.option("--port", type=int, default=8080, show_default=True, help="Envoy listener port")
@click.option("--admin-port", type=int, default=9901, show_default=True)
@click.option("--authz-port", type=int, default=9191, show_default=True)
@click.option("--mint-port", type=int, default=8081, show_default=True)
@click.option("--upstream-port", type=int, default=8000, show_default=True)
@click.option("--mint-grpc-port", type=int, default=8082, show_default=True)
@click.option("--idp-port", type=int, default=8090, show_default=True, help="the demo OIDC issuer")
@click.option("--metrics-port", type=int, default=9464, show_default=True, help="the authz server's /metrics")
@click.option(
    "--transport",
    type=click.Choice(["grpc", "http"]),
    default="grpc",
    show_default=True,
    help="Envoy's ext_authz transport, same decisions either way: grpc (envoy.yaml, per-route settings on Envoy) "
    "or http (envoy-http.yaml, about 3x the checks per core in our bench, settings in the authz route table)",
)
@click.option(
    "--config",
    "config_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="a satgate.yaml whose settings apply over the demo stack's (its listeners and state files stay the stack's)",
)
@click.option(
    "--policies",
    type=click.Path(exists=True, path_type=Path),
    help="your trust policies (a file or a directory) instead of the example; their attribute caveats are declared "
    "to authz, and a policy without a tenant gets tenant demo",
)
def up(
    state_dir,
    port,
    admin_port,
    authz_port,
    mint_port,
    upstream_port,
    mint_grpc_port,
    idp_port,
    metrics_port,
    transport,
    config_file,
    policies,
) -> None:
    """Start Envoy + authz + mint + a demo upstream on embedded defaults, print a working curl."""
    import signal  # noqa: PLC0415

    from satgate.tokens.mint import mint as mint_token  # noqa: PLC0415
    from satgate_dev.devstack import Stack, StackPorts  # noqa: PLC0415

    ports = StackPorts(port, admin_port, authz_port, mint_port, upstream_port, mint_grpc_port, idp_port)
    metrics_listen = f"127.0.0.1:{metrics_port}"
    overrides, policies = _own_settings(config_file, policies)
    overrides.setdefault("authz", {})["metrics_listen"] = metrics_listen
    stack = Stack(
        Path(state_dir).resolve(),
        ports,
        config_overrides=overrides,
        transport=transport,
        policies_path=policies,
    )
    click.echo(
        f"starting envoy :{port}, authz :{authz_port} ({transport} ext_authz), mint :{mint_port} "
        f"(gRPC :{mint_grpc_port}), demo issuer :{idp_port}, upstream :{upstream_port} (state in {stack.state_dir})"
    )
    if transport == "grpc":
        click.echo("  (--transport http: the same checks, about 3x as many per core; docs/performance.md)")
    try:
        stack.start()
    except (RuntimeError, TimeoutError, OSError) as exc:  # OSError: a port in use, a missing envoy binary
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
    console_admin = mint_token(
        _keyring(config), "demo", [("expires", format_utc(time.time() + 8 * 3600)), ("scope", "satgate:admin")]
    )
    click.echo(f"console: http://127.0.0.1:{mint_port}/console  (sign in with this admin token: tenant demo, 8h)\n")
    click.echo(f"  {console_admin.token}\n")
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
