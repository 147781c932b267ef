"""`satgate authz`, `satgate mint`, `satgate health`: run the servers and probe them."""

from __future__ import annotations

import click

from satgate_cli.common import (
    _config,
    _keyring,
    config_option,
)


@click.command()
@config_option
@click.option("--workers", type=click.IntRange(1, 64), help="worker processes sharing the port (SO_REUSEPORT)")
@click.option("--listen", help="host:port (or unix:/path) for the gRPC transport")
@click.option("--http-listen", help="host:port (or unix:/path) for the HTTP transport")
@click.option(
    "--transport",
    type=click.Choice(["grpc", "http", "both"]),
    help="Envoy's grpc_service, its http_service (faster), or both  [default: authz.transport, grpc]",
)
def authz(
    config_path: str | None, workers: int | None, listen: str | None, http_listen: str | None, transport: str | None
) -> None:
    """Run the Envoy ext_authz server (gRPC, HTTP or both transports)."""
    from authz_server.server import run  # noqa: PLC0415 - grpc server only when serving

    config = _config(config_path)
    options = {"workers": workers, "listen": listen, "http_listen": http_listen, "transport": transport}
    updates = {k: v for k, v in options.items() if v is not None}
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


@click.command()
@config_option
def mint(config_path: str | None) -> None:
    """Run the Mint: HTTP/JSON and gRPC."""
    from mint_server.api.server import check_startup, run  # noqa: PLC0415
    from mint_server.policies.models import PolicyError  # noqa: PLC0415
    from satgate.config import ConfigError  # noqa: PLC0415
    from satgate.control_plane.url import ControlPlaneError  # noqa: PLC0415
    from satgate.logs import configure_logging  # noqa: PLC0415

    config = _config(config_path)
    _keyring(config)
    try:
        check_startup(config)
        configure_logging(config.log_level, component="mint")
        run(config)
    # bad policies, an unset secret, a port in use, a control plane behind this schema: one line
    except (PolicyError, ConfigError, ControlPlaneError, OSError) as exc:
        raise click.ClickException(str(exc)) from None


@click.command()
@click.argument("target")
@click.option("--service", default="", help="gRPC service name (default: the whole server)")
def health(target: str, service: str) -> None:
    """Exit 0 when the gRPC server at TARGET (host:port) reports SERVING: for container health checks."""
    from satgate_dev.devstack import grpc_serving  # noqa: PLC0415

    if not grpc_serving(target, service):
        raise click.ClickException(f"{target}: not serving")
    click.echo(f"{target}: serving")
