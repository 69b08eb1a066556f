"""`ca-service webhooks list [--failed]` and `webhooks retry ID` (docs/events.md)."""

from __future__ import annotations

import click

from ca_service.cli.common import cli_actor, context, echo_json, echo_table, handle_errors, reading_context
from ca_service.services.events import admin


@click.group("webhooks")
def webhooks_group() -> None:
    """Lifecycle events sent to the front end (CA_WEBHOOK_URLS): one delivery per event and URL.

    A delivery is pending (retried with backoff: 5 s, doubling, at most 10 minutes apart),
    delivered (the receiver answered 2xx) or failed (no 2xx for CA_WEBHOOK_GIVE_UP_HOURS,
    default 24). `retry` puts a failed one back; it is audited.
    """


@webhooks_group.command("list")
@click.option("--failed", is_flag=True, help="Only deliveries given up on (no 2xx within the retry period).")
@click.option("--limit", type=click.IntRange(1, 10_000), default=200, show_default=True, help="At most this many, newest first.")
@click.option("--json", "as_json", is_flag=True, help="JSON output.")
@handle_errors
def webhooks_list(failed: bool, limit: int, as_json: bool) -> None:
    """The deliveries, newest first: event, login ID, URL, status, attempts, last error."""
    rows = admin.list_deliveries(reading_context(), failed_only=failed, limit=limit)
    if as_json:
        echo_json([r.as_dict() for r in rows])
        return
    columns = ["id", "type", "login_id", "url", "status", "attempts", "last_error"]
    echo_table(columns, [[getattr(r, c) for c in columns] for r in rows])


@webhooks_group.command("retry")
@click.argument("delivery_id", type=int)
@handle_errors
def webhooks_retry(delivery_id: int) -> None:
    """Send failed delivery DELIVERY_ID again (a new retry period; audited)."""
    view = admin.retry(context(), cli_actor(), delivery_id)
    click.echo(f"delivery {view.id} ({view.type} {view.event_id} to {view.url}) is pending again")
