"""What every command group shares: config and keyring loading with one-line errors, CLI audit records,
durations and caveat options."""

from __future__ import annotations

import asyncio
import sys
import time
from typing import Any

import click

from satgate import timefmt
from satgate.config import Config, ConfigError, load_config
from satgate.keyring import KeyringError, load_keyring
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


def _read_token(text: str) -> str:
    return sys.stdin.read().strip() if text == "-" else text.strip()
