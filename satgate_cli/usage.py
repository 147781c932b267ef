"""`satgate usage`: what tokens, tenants and attributes spent."""

from __future__ import annotations

import asyncio
import json
import time

import click

from satgate_cli.common import (
    _config,
    config_option,
    parse_duration,
)


@click.command()
@config_option
@click.option(
    "--by", default="token", show_default=True, help="token, tenant, route or attr:<key> (e.g. attr:department)"
)
@click.option("--since", default="24h", show_default=True, help="how far back, e.g. 90m, 7d")
@click.option("--json", "as_json", is_flag=True)
def usage(config_path, by, since, as_json) -> None:
    """Requests, allowed, denied and credits per token, tenant or declared attribute: of every authz host when the
    control plane is PostgreSQL, else of this host's usage file."""
    from satgate.control_plane.url import ControlPlaneError  # noqa: PLC0415
    from satgate.control_plane.usage import open_usage_sink  # noqa: PLC0415

    config = _config(config_path)

    async def report() -> list[dict]:  # whether or not this host records usage itself
        sink = await open_usage_sink(config.control_plane, config.authz.usage.path)
        try:
            return await sink.report(by, time.time() - parse_duration(since))
        finally:
            await sink.close()

    try:
        rows = asyncio.run(report())
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--by") from None
    except ControlPlaneError as exc:
        raise click.ClickException(str(exc)) from None
    if as_json:
        click.echo(json.dumps(rows))
        return
    click.echo(f"{by:34s} {'requests':>9s} {'allowed':>8s} {'denied':>7s} {'credits':>9s}")
    for row in rows:
        click.echo(
            f"{row['key'] or '-':34s} {row['requests']:9d} {row['allowed']:8d} {row['denied']:7d} {row['credits']:9d}"
        )
