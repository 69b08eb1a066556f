"""`ca-service clients`: API clients and their bearer tokens."""

from __future__ import annotations

import click

from ca_service.cli.common import cli_actor, context, echo_json, echo_table, handle_errors
from ca_service.services import clients as svc


@click.group("clients")
def clients_group() -> None:
    """Create, list and disable API clients (the token is shown once)."""


@clients_group.command("create")
@click.option("--name", required=True, help="Unique name, e.g. banking-frontend.")
@click.option("--role", required=True, type=click.Choice(svc.ROLES), help="What the client may call.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object (client_id, name, role, token).")
@handle_errors
def create(name: str, role: str, as_json: bool) -> None:
    """Create an API client and print its token (only a hash is stored)."""
    info, token = svc.create_client(context(), cli_actor(), name, role)
    if as_json:
        echo_json({"client_id": info.client_id, "name": info.name, "role": info.role, "token": token})
        return
    click.echo(f"created API client {info.name} ({info.client_id}) with role {info.role}")
    click.echo(f"token (shown once, store it now): {token}")


@clients_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="JSON output.")
@handle_errors
def list_(as_json: bool) -> None:
    """List API clients (never their tokens)."""
    rows = svc.list_clients(context())
    if as_json:
        echo_json(rows)
        return
    echo_table(
        ["client_id", "name", "role", "created_at", "disabled_at"],
        [[r.client_id, r.name, r.role, r.created_at, r.disabled_at] for r in rows],
    )


@clients_group.command("disable")
@click.argument("name_or_id")
@handle_errors
def disable(name_or_id: str) -> None:
    """Disable an API client by name or client_id; its token stops working within seconds."""
    info = svc.disable_client(context(), cli_actor(), name_or_id)
    click.echo(f"disabled API client {info.name} ({info.client_id}) at {info.disabled_at:%Y-%m-%dT%H:%M:%SZ}")
