"""What every command group shares: config and keyring loading with one-line errors, CLI audit records,
durations and caveat options."""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from satgate import timefmt
from satgate.config import Config, ConfigError, load_config
from satgate.keyring import KeyringError, load_keyring
from satgate.sqlite_db import use_group_readable_state
from satgate.timefmt import format_utc

STATE_DIR_KEY = "satgate.state_dir"


def _config(path: str | None):
    """satgate.yaml (or embedded defaults), with `--state-dir` applied: with no --config, the state dir's own
    satgate.yaml if it has one (as `satgate up` writes), so `--state-dir X` means the same for every command."""
    context = click.get_current_context(silent=True)
    state_dir = context.meta.get(STATE_DIR_KEY) if context is not None else None
    if path is None and state_dir is not None and (Path(state_dir) / "satgate.yaml").is_file():
        path = str(Path(state_dir) / "satgate.yaml")
    try:
        config = load_config(path, state_dir=state_dir)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    use_group_readable_state(config.keyring_group_readable)
    return config


def _keyring(config):
    try:
        return load_keyring(config.keyring, group_readable=config.keyring_group_readable)
    except KeyringError as exc:
        raise click.ClickException(str(exc)) from None


def _audit(config: Config, event_type: str, **fields: Any) -> None:
    """Control-plane actions taken from the CLI land in the same hash-chained log as the Mint's."""
    from satgate.audit import AuditEvent  # noqa: PLC0415

    async def append() -> None:
        log = config.open_audit_log()  # in the loop that uses it (Redis clients bind)
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


def _standard_caveats(
    scope: str | None, budget: int | None, ttl: str | None, extra: tuple[str, ...], window: str | None = None
):
    caveats: list[tuple[str, str]] = []
    if ttl:
        caveats.append(("expires", format_utc(time.time() + parse_duration(ttl))))
    if scope:
        caveats.append(("scope", scope))
    if budget is not None:
        caveats.append(("budget", str(budget)))
    if window is not None:
        caveats.append(("budget_window", window))
    return caveats + _caveat_pairs(extra)


def _budget_window(_context: click.Context, _param: click.Parameter, value: str | None) -> str | None:
    """--budget-window 500/1d: checked here, so a typo is a usage error, not a token the verifier refuses."""
    from satgate.caveats.budget_window import BudgetWindow  # noqa: PLC0415
    from satgate.caveats.grammar import CaveatSyntaxError  # noqa: PLC0415

    if value is not None:
        try:
            BudgetWindow.parse(value)
        except CaveatSyntaxError:
            raise click.BadParameter(
                f"{value!r} is not <credits>/<period>: e.g. 500/1d, 100/1h, 20000/month (period <n>m, <n>h, <n>d)"
            ) from None
    return value


budget_window_option = click.option(
    "--budget-window",
    "window",
    callback=_budget_window,
    metavar="CREDITS/PERIOD",
    help="credits per window that refills, e.g. 500/1d, 100/1h, 20000/month",
)


def _remember_state_dir(context: click.Context, _param: click.Parameter, value: str | None) -> None:
    if value is not None:
        context.meta[STATE_DIR_KEY] = value


def config_option(command: Callable[..., Any]) -> Callable[..., Any]:
    """--config and --state-dir, the same on every command that reads the configuration."""
    command = click.option(
        "--state-dir",
        type=click.Path(file_okay=False),
        envvar="SATGATE_STATE_DIR",
        expose_value=False,
        is_eager=True,
        callback=_remember_state_dir,
        help="where state files live that satgate.yaml does not place (default: .satgate beside it); "
        "without --config, its satgate.yaml if it has one",
    )(command)
    return click.option(
        "--config",
        "-c",
        "config_path",
        type=click.Path(dir_okay=False),
        envvar="SATGATE_CONFIG",
        help="satgate.yaml (default: embedded defaults, state in ./.satgate)",
    )(command)


def _read_token(text: str) -> str:
    return sys.stdin.read().strip() if text == "-" else text.strip()
