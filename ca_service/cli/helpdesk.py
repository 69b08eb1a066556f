"""The help desk's look-ups: `search`, `users search`, `audit list`, `notices list`
(the commands are attached to their groups in cli/main.py)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import click

from ca_service.cli.common import WHEN, echo_json, echo_table, handle_errors, reading_context
from ca_service.services.helpdesk import lookups as helpdesk
from ca_service.store.helpdesk_search import MAX_LIMIT

JSON = click.option("--json", "as_json", is_flag=True, help="JSON output.")


def _limit(what: str) -> Any:
    return click.option(
        "--limit", type=click.IntRange(1, MAX_LIMIT), default=20, show_default=True, help=f"At most this many {what}."
    )


_USER_COLUMNS = ("login_id", "org_id", "org_name", "role", "email", "display_name", "matched_on")


@click.command("search")
@click.argument("query")
@_limit("of each kind (users, organisations, certificates)")
@JSON
@handle_errors
def search(query: str, limit: int, as_json: bool) -> None:
    """Find users, organisations and certificates: QUERY is a prefix of a login ID, organisation ID,
    email or display name, part of an organisation's name, or a prefix of a serial (hex, colons allowed)."""
    found = helpdesk.search(reading_context(), query, limit)
    if as_json:
        echo_json(found)
        return
    click.echo(f"users ({len(found.users)}):")
    echo_table(list(_USER_COLUMNS), [[getattr(u, c) for c in _USER_COLUMNS] for u in found.users])
    click.echo(f"\norganisations ({len(found.organizations)}):")
    echo_table(
        ["org_id", "name", "login_method", "matched_on"],
        [[o.org_id, o.name, o.login_method, o.matched_on] for o in found.organizations],
    )
    click.echo(f"\ncertificates ({len(found.certificates)}):")
    echo_table(
        ["serial", "login_id", "org_id", "not_after", "revoked_at"],
        [[c.serial, c.login_id, c.org_id, c.not_after, c.revoked_at] for c in found.certificates],
    )


@click.command("search")
@click.argument("query")
@_limit("users")
@JSON
@handle_errors
def users_search(query: str, limit: int, as_json: bool) -> None:
    """Users only (`search` also finds organisations and certificates): those whose login ID,
    organisation ID, email or display name starts with QUERY, or whose organisation's name
    contains it."""
    users = helpdesk.search(reading_context(), query, limit).users
    if as_json:
        echo_json(users)
        return
    echo_table(list(_USER_COLUMNS), [[getattr(u, c) for c in _USER_COLUMNS] for u in users])
    click.echo(f"{len(users)} users", err=True)


@click.command("list")
@click.option("--actor", help="API client name (cli:<unix user> for the CLI) or acting login ID.")
@click.option("--action", help='Exact action (certificate.revoked), or a prefix ending in "." (certificate.).')
@click.option("--target", help="Target ID: a serial, login ID, organisation ID, job ID ...")
@click.option("--since", type=WHEN, help="From this date/time (inclusive): Japan time (CA_TIMEZONE), or UTC with Z.")
@click.option("--until", type=WHEN, help="Before this date/time: Japan time (CA_TIMEZONE), or UTC with Z.")
@click.option("--limit", type=click.IntRange(1, MAX_LIMIT), default=50, show_default=True, help="At most this many events.")
@JSON
@handle_errors
def audit_list(
    actor: str | None,
    action: str | None,
    target: str | None,
    since: datetime | None,
    until: datetime | None,
    limit: int,
    as_json: bool,
) -> None:
    """Audit events, newest first, filtered."""
    query = helpdesk.AuditQuery(actor, action, target, since, until, limit)
    events = helpdesk.audit_events(reading_context(), query)
    if as_json:
        echo_json(events)
        return
    echo_table(
        ["id", "occurred_at", "client", "login_id", "action", "target", "details"],
        [
            [e["id"], e["occurred_at"], e["client_name"], e["acting_login_id"], e["action"],
             f"{e['target_type']}:{e['target_id']}", _short(e["details"])]
            for e in events
        ],
    )  # fmt: skip
    click.echo(f"{len(events)} events", err=True)


def _short(details: object) -> str:
    text = json.dumps(details, ensure_ascii=False, sort_keys=True, default=str)
    return text if len(text) <= 80 else text[:77] + "..."


@click.command("list")
@click.option("--failed", is_flag=True, help="Only notices whose email failed after every retry.")
@click.option("--login", "login_id", help="Only this login ID's.")
@click.option("--limit", type=click.IntRange(1, MAX_LIMIT), default=200, show_default=True, help="At most this many.")
@JSON
@handle_errors
def notices_list(failed: bool, login_id: str | None, limit: int, as_json: bool) -> None:
    """The expiry notices, newest first, with their email status."""
    data = helpdesk.list_notices(reading_context(), failed_only=failed, login_id=login_id, limit=limit)
    if as_json:
        echo_json(data)
        return
    columns = ["id", "kind", "login_id", "serial", "email_status", "attempts", "last_error"]
    echo_table(columns, [[d[c] for c in columns] for d in data])
