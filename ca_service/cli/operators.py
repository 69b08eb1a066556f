"""`ca-service operators`: the console's operator accounts (create, list, disable, reset)."""

from __future__ import annotations

import click

from ca_service.cli.common import cli_actor, context, echo_json, echo_table, handle_errors, reading_context
from ca_service.services.access import operators

JSON = click.option("--json", "as_json", is_flag=True, help="JSON output.")


@click.group("operators")
def operators_group() -> None:
    """Help-desk people who log in to the web console (/console/) with a password and a TOTP code."""


def _print_credentials(creds: operators.Credentials, as_json: bool) -> None:
    data = {"username": creds.username, "password": creds.password, "totp_secret": creds.totp_secret}
    if as_json:
        echo_json({**data, "totp_uri": creds.totp_uri})
        return
    for key, value in data.items():
        click.echo(f"{key}: {value}")
    click.echo(f"totp_uri: {creds.totp_uri}")
    click.echo("Shown once: hand the password and the TOTP secret (or the URI as a QR code) to the person.", err=True)


@operators_group.command("create")
@click.option("--username", required=True, help="Login name: lower-case letters, digits, '.', '_', '-'.")
@click.option("--display-name", help="The person's name as the console shows it.")
@JSON
@handle_errors
def create(username: str, display_name: str | None, as_json: bool) -> None:
    """Create an operator; prints {username, password, totp_secret} once (only an argon2 hash is kept)."""
    _print_credentials(operators.create(context(), cli_actor(), username, display_name), as_json)


@operators_group.command("list")
@JSON
@handle_errors
def list_(as_json: bool) -> None:
    """Every operator with state (disabled, locked until, last login)."""
    rows = operators.list_operators(reading_context())
    if as_json:
        echo_json(rows)
        return
    echo_table(
        ["username", "display_name", "created_at", "disabled_at", "locked_until", "last_login_at"],
        [[r.username, r.display_name, r.created_at, r.disabled_at, r.locked_until, r.last_login_at] for r in rows],
    )


@operators_group.command("disable")
@click.argument("username")
@JSON
@handle_errors
def disable(username: str, as_json: bool) -> None:
    """Disable an operator at once (their console sessions end)."""
    info = operators.disable(context(), cli_actor(), username)
    if as_json:
        echo_json(info)
    else:
        click.echo(f"disabled {info.username}")


@operators_group.command("reset")
@click.argument("username")
@JSON
@handle_errors
def reset(username: str, as_json: bool) -> None:
    """New password and TOTP secret (printed once); unlocks and re-enables the account, ends its sessions."""
    _print_credentials(operators.reset(context(), cli_actor(), username), as_json)
