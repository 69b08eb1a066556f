"""`ca-service clients`: API clients and their bearer tokens."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import click

from ca_service.cli.common import cli_actor, context, echo_json, echo_table, handle_errors, reading_context
from ca_service.services.access import clients as svc

_UNITS = {"d": "days", "h": "hours", "m": "minutes"}


class Duration(click.ParamType):
    """90d, 12h or 30m."""

    name = "duration"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> timedelta:
        if isinstance(value, timedelta):
            return value
        match = re.fullmatch(r"\s*(\d{1,6})\s*([dhm])\s*", str(value))
        if match is None:
            self.fail(f"{value!r} is not a duration such as 90d, 12h or 30m", param, ctx)
        return timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})


def _iso(value: Any) -> str | None:
    return f"{value:%Y-%m-%dT%H:%M:%SZ}" if value is not None else None


@click.group("clients")
def clients_group() -> None:
    """Create, list and disable API clients (the token is shown once)."""


@clients_group.command("create")
@click.option("--name", required=True, help="Unique name, e.g. banking-frontend.")
@click.option("--role", required=True, type=click.Choice(svc.ROLES), help="What the client may call.")
@click.option(
    "--expires-in", type=Duration(), default=None, help="The token stops working after this (e.g. 90d); default: never."
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object (client_id, name, role, token, expires_at).")
@handle_errors
def create(name: str, role: str, expires_in: timedelta | None, as_json: bool) -> None:
    """Create an API client and print its token (only a hash is stored)."""
    info, token = svc.create_client(context(), cli_actor(), name, role, expires_in)
    if as_json:
        echo_json(
            {
                "client_id": info.client_id,
                "name": info.name,
                "role": info.role,
                "token": token,
                "expires_at": _iso(info.expires_at),
            }
        )
        return
    click.echo(f"created API client {info.name} ({info.client_id}) with role {info.role}")
    if info.expires_at is not None:
        click.echo(f"the token expires at {_iso(info.expires_at)}")
    click.echo(f"token (shown once, store it now): {token}")


@clients_group.command("rotate")
@click.argument("name_or_id")
@click.option(
    "--grace",
    type=Duration(),
    default=None,
    help="How long the current token keeps working (default CA_TOKEN_ROTATION_GRACE_HOURS).",
)
@click.option(
    "--expires-in", type=Duration(), default=None, help="The new token's lifetime (default: the current token's expiry)."
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object (..., token, previous_token_valid_until).")
@handle_errors
def rotate(name_or_id: str, grace: timedelta | None, expires_in: timedelta | None, as_json: bool) -> None:
    """Issue a new token; the current one keeps working until the grace period ends (audited)."""
    info, token = svc.rotate_client(context(), cli_actor(), name_or_id, grace=grace, expires_in=expires_in)
    if as_json:
        echo_json(
            {
                "client_id": info.client_id, "name": info.name, "role": info.role, "token": token,
                "expires_at": _iso(info.expires_at), "previous_token_valid_until": _iso(info.previous_token_valid_until),
            }
        )  # fmt: skip
        return
    click.echo(f"rotated the token of API client {info.name} ({info.client_id})")
    click.echo(f"the previous token works until {_iso(info.previous_token_valid_until)}")
    if info.expires_at is not None:
        click.echo(f"the new token expires at {_iso(info.expires_at)}")
    click.echo(f"token (shown once, store it now): {token}")


@clients_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="JSON output.")
@handle_errors
def list_(as_json: bool) -> None:
    """List API clients (never their tokens)."""
    rows = svc.list_clients(reading_context())
    if as_json:
        echo_json(rows)
        return
    echo_table(
        ["client_id", "name", "role", "created_at", "disabled_at", "expires_at"],
        [[r.client_id, r.name, r.role, r.created_at, r.disabled_at, r.expires_at] for r in rows],
    )


@clients_group.command("disable")
@click.argument("name_or_id")
@handle_errors
def disable(name_or_id: str) -> None:
    """Disable an API client by name or client_id; its token stops working within seconds."""
    info = svc.disable_client(context(), cli_actor(), name_or_id)
    click.echo(f"disabled API client {info.name} ({info.client_id}) at {info.disabled_at:%Y-%m-%dT%H:%M:%SZ}")
