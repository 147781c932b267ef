"""`satgate keys`: create, rotate and retire the keyring's keys."""

from __future__ import annotations

import json

import click

from satgate.keyring import KeyringError, load_or_create_keyring
from satgate_cli.common import (
    _audit,
    _config,
    _keyring,
    config_option,
)


@click.group()
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
