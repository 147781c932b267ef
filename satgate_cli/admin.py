"""`satgate admin …`: one subcommand per admin API operation (mint_server/api/operations.py), over the Mint's
HTTP API with an admin credential: `--mint-url` (or SATGATE_MINT_URL) and `--token-file` (or SATGATE_ADMIN_TOKEN).
Options are the operation's fields; a policy document is given as a YAML or JSON file."""

from __future__ import annotations

import asyncio
import json
import re
import types
import typing
from pathlib import Path
from typing import Any

import click
import yaml

from mint_server.api.operations import OPERATIONS, Operation


def _kebab(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "-", name).lower()


def _click_type(annotation: Any) -> Any:
    """The option type for a field: Literal → a choice, int/float as themselves, anything else text."""
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        return _click_type(args[0]) if len(args) == 1 else click.STRING
    if typing.get_origin(annotation) is typing.Literal:
        return click.Choice([str(a) for a in typing.get_args(annotation)])
    if typing.get_origin(annotation) is typing.Annotated:
        return _click_type(args[0])
    return {int: click.INT, float: click.FLOAT}.get(annotation, click.STRING)


def _document(path: str) -> Any:
    try:
        return yaml.safe_load(Path(path).read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise click.ClickException(f"--file {path}: {exc}") from None


async def _send(url: str, token: str, operation: Operation, arguments: dict[str, Any]) -> tuple[int, str, str]:
    import aiohttp  # noqa: PLC0415 - only for admin calls

    path = operation.path
    for name in operation.path_params:
        path = path.replace("{" + name + "}", str(arguments.pop(name)))
    headers = {"Authorization": f"Bearer {token}"}
    query = {k: str(v).lower() if isinstance(v, bool) else str(v) for k, v in arguments.items()}
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
        request = (
            session.request(operation.method, url + path, headers=headers, params=query)
            if operation.method in ("GET", "DELETE")
            else session.request(operation.method, url + path, headers=headers, json=arguments)
        )
        async with request as response:
            return response.status, response.content_type, await response.text()


def _command(operation: Operation) -> click.Command:
    def run(mint_url: str, token_file: str | None, **options: Any) -> None:
        token = (Path(token_file).read_text().strip() if token_file else None) or click.get_current_context().obj
        if not token:
            raise click.ClickException("give --token-file (or set SATGATE_ADMIN_TOKEN): a token with an admin role")
        arguments = {k: v for k, v in options.items() if v is not None and v is not False}
        if "file" in arguments:
            arguments["document"] = _document(arguments.pop("file"))
        base = mint_url.rstrip("/").removesuffix("/api/mint/exchange")
        try:
            status, content_type, text = asyncio.run(_send(base, token, operation, arguments))
        except OSError as exc:
            raise click.ClickException(f"cannot reach the Mint at {base}: {exc}") from None
        if status != 200:
            try:
                problem = json.loads(text)
                raise click.ClickException(f"{status} {problem['error']}: {problem['message']}")
            except (ValueError, KeyError, TypeError):
                raise click.ClickException(f"{status}: {text[:200]}") from None
        click.echo(json.dumps(json.loads(text), indent=2) if content_type == "application/json" else text, nl=False)
        if content_type == "application/json":
            click.echo()

    params: list[click.Parameter] = [
        click.Option(
            ["--mint-url"],
            envvar="SATGATE_MINT_URL",
            default="http://127.0.0.1:8081",
            show_default=True,
            help="the Mint's base URL (SATGATE_MINT_URL)",
        ),
        click.Option(["--token-file"], type=click.Path(dir_okay=False, exists=True), help="the admin token, in a file"),
    ]
    for name, field in operation.request.model_fields.items():
        if name == "document":
            params.append(
                click.Option(
                    ["--file"],
                    required=True,
                    type=click.Path(dir_okay=False, exists=True),
                    help="the trust policy, YAML or JSON (one policy, as a file holds it)",
                )
            )
        elif field.annotation is bool or "StrictBool" in repr(field.annotation):
            params.append(click.Option([f"--{name.replace('_', '-')}"], is_flag=True, help=field.description))
        else:
            params.append(
                click.Option(
                    [f"--{name.replace('_', '-')}", name],
                    type=_click_type(field.annotation),
                    required=field.is_required(),
                    help=field.description,
                )
            )
    return click.Command(
        _kebab(operation.name),
        callback=run,
        params=params,
        help=f"{operation.summary}. Role: {operation.role}. ({operation.method} {operation.path})",
    )


@click.group()
@click.pass_context
def admin(ctx: click.Context) -> None:
    """The Mint's admin API: trust policies, tokens, budgets, revocation, usage, audit."""
    import os  # noqa: PLC0415

    ctx.obj = os.environ.get("SATGATE_ADMIN_TOKEN")


for _operation in OPERATIONS:
    admin.add_command(_command(_operation))
