"""The help desk's operator commands: organisations, users, certificates, revocation, failed jobs.

Every change goes through the same service functions as the API, so it is audited the same way
(the actor is `cli:<unix user>`, the paper ticket is recorded). Human tables by default,
`--json` for scripts; progress bars (on a terminal, on stderr) for long runs.
"""

from __future__ import annotations

import re
import sys
from dataclasses import asdict
from datetime import timedelta
from typing import Any

import click

from ca_service.api.schemas import FREE_TEXT
from ca_service.cli.common import cli_actor, context, echo_json, echo_table, fail, handle_errors, reading_context, shown
from ca_service.errors import NotFound
from ca_service.pki.reasons import CALLER_REASONS
from ca_service.services.background import failed_jobs
from ca_service.services.certificates import revocation
from ca_service.services.certificates import views as certificates
from ca_service.services.certificates.views import CertificateView
from ca_service.services.helpdesk import lookups as helpdesk
from ca_service.services.registry import login_method
from ca_service.services.registry import organisations as registry

JSON = click.option("--json", "as_json", is_flag=True, help="JSON output.")
PAGE = 500
_LIST_COLUMNS = ("serial", "login_id", "org_id", "status", "not_after", "days_remaining", "revocation_reason")


def _ticket(_ctx: click.Context, _param: click.Parameter, value: str) -> str:
    """The paper ticket as the API takes it: 1 to 100 characters, surrounding spaces dropped."""
    ticket = value.strip()
    if not 1 <= len(ticket) <= 100 or not re.fullmatch(FREE_TEXT, ticket):
        raise click.BadParameter("give the paper ticket's reference (1 to 100 characters, no control characters)")
    return ticket


TICKET = click.option(
    "--ticket", required=True, callback=_ticket, help="The paper ticket of the request (recorded in the audit trail)."
)
OPTIONAL_TICKET = click.option(
    "--ticket",
    callback=lambda c, p, v: None if v is None else _ticket(c, p, v),
    help="The paper ticket: required for a master user's certificate (R9), optional for a general user's.",
)


def _echo_fields(fields: dict[str, Any]) -> None:
    """One `name: value` line per field, aligned (for a single object)."""
    width = max(len(k) for k in fields)
    for key, value in fields.items():
        click.echo(f"{key.ljust(width)}  {shown(value)}")


def _cert_summary(view: CertificateView) -> dict[str, Any]:
    return {k: v for k, v in asdict(view).items() if k != "certificate_pem"}


# --- organisations ---------------------------------------------------------------------------------
@click.group("orgs")
def orgs_group() -> None:
    """Organisations: show one, switch its login method (paper procedure)."""


@orgs_group.command("show")
@click.argument("org_id")
@JSON
@handle_errors
def orgs_show(org_id: str, as_json: bool) -> None:
    """Show an organisation and its login method."""
    view = registry.get_organization(reading_context(), org_id)
    if as_json:
        echo_json(view)
        return
    _echo_fields(asdict(view))


@orgs_group.command("switch-method")
@click.argument("org_id")
@click.option("--to", "method", required=True, type=click.Choice(registry.LOGIN_METHODS), help="The new login method.")
@TICKET
@JSON
@handle_errors
def orgs_switch_method(org_id: str, method: str, ticket: str, as_json: bool) -> None:
    """Switch the login method (R2, R3). To id_password revokes every valid certificate of the
    organisation as cessation_of_operation and lists them."""
    result = login_method.switch_login_method(context(), cli_actor(ticket), org_id, method, ticket)
    if as_json:
        echo_json({**asdict(result), "revoked": [_cert_summary(v) for v in result.revoked]})
        return
    if result.previous_login_method == result.login_method:
        click.echo(f"organisation {org_id} already uses {method}: nothing changed")
        return
    click.echo(f"organisation {org_id}: login method {result.previous_login_method} -> {result.login_method} (ticket {ticket})")
    if result.revoked:
        click.echo(f"revoked {len(result.revoked)} certificates (cessation_of_operation):")
        echo_table(["serial", "login_id", "not_after"], [[v.serial, v.login_id, v.not_after] for v in result.revoked])


# --- users ---------------------------------------------------------------------------------------
@click.group("users")
def users_group() -> None:
    """Bank users (login IDs)."""


@users_group.command("show")
@click.argument("login_id")
@JSON
@handle_errors
def users_show(login_id: str, as_json: bool) -> None:
    """Show a user, its organisation's login method and its current certificate."""
    view = registry.get_user(reading_context(), login_id)
    if as_json:
        current = _cert_summary(view.current_certificate) if view.current_certificate else None
        echo_json({**asdict(view), "current_certificate": current})
        return
    fields = {k: v for k, v in asdict(view).items() if k != "current_certificate"}
    cert = view.current_certificate
    fields["current_certificate"] = f"{cert.serial} (until {shown(cert.not_after)}, {cert.days_remaining} days)" if cert else None
    _echo_fields(fields)


# --- certificates ----------------------------------------------------------------------------------
@click.group("certs")
def certs_group() -> None:
    """Client certificates."""


@certs_group.command("list")
@click.option("--expiring-within", "days", type=click.IntRange(min=0), help="Only those expiring within DAYS (active).")
@click.option("--org", "org_id", help="Only this organisation's.")
@click.option("--login", "login_id", help="Only this login ID's.")
@click.option("--status", type=click.Choice(certificates.STATUSES), help="active, revoked or expired.")
@JSON
@handle_errors
def certs_list(days: int | None, org_id: str | None, login_id: str | None, status: str | None, as_json: bool) -> None:
    """List certificates, oldest issued first. --expiring-within implies --status active."""
    ctx = reading_context()
    expiring_before = ctx.clock.now() + timedelta(days=days) if days is not None else None
    if days is not None and status is None:
        status = "active"
    found: list[CertificateView] = []
    cursor: str | None = None
    with click.progressbar(length=0, label="reading certificates", show_pos=True, file=sys.stderr) as bar:
        while True:
            page, cursor = certificates.list_certificates(
                ctx,
                certificates.CertificateFilter(
                    login_id=login_id, org_id=org_id, status=status, expiring_before=expiring_before, limit=PAGE, cursor=cursor
                ),
            )
            found.extend(page)
            bar.update(len(page))
            if cursor is None:
                break
    if as_json:
        echo_json([_cert_summary(v) for v in found])
        return
    echo_table(list(_LIST_COLUMNS), [[getattr(v, c) for c in _LIST_COLUMNS] for v in found])
    click.echo(f"{len(found)} certificates", err=True)


def _detail_by_prefix(serial: str) -> helpdesk.CertificateDetail:
    """The certificate with this serial, or the only one whose serial starts with it (as `search`
    finds them: hex, colons and leading zeros allowed); several: exit 1 listing a few."""
    ctx = reading_context()
    try:
        return helpdesk.certificate_detail(ctx, serial)
    except NotFound:
        found = [c.serial for c in helpdesk.search(ctx, serial, 6).certificates if c.matched_on == "serial"]
        if len(found) == 1:
            return helpdesk.certificate_detail(ctx, found[0])
        if not found:
            raise
        listed = ", ".join(found[:5]) + (", ..." if len(found) > 5 else "")
        fail(f"several certificates start with {serial}: {listed}; give more digits", 1)


@certs_group.command("show")
@click.argument("serial")
@click.option("--pem", is_flag=True, help="Print the certificate PEM only.")
@JSON
@handle_errors
def certs_show(serial: str, pem: bool, as_json: bool) -> None:
    """Show one certificate (SERIAL, or the prefix of exactly one serial): status, validity,
    renewal links, revocation (when, why, by which client or CLI user, for which master user, on
    which paper ticket)."""
    detail = _detail_by_prefix(serial)
    if pem:
        click.echo(detail.certificate.certificate_pem, nl=False)
    elif as_json:
        echo_json({**asdict(detail.certificate), **detail.summary()})
    else:
        _echo_fields(detail.summary())


# --- revocation ----------------------------------------------------------------------------------
@click.command("revoke")
@click.argument("serial")
@click.option(
    "--reason",
    required=True,
    type=click.Choice(CALLER_REASONS),
    help="RFC 5280 reason (API name; not superseded, the renewal's own).",
)
@OPTIONAL_TICKET
@JSON
@handle_errors
def revoke(serial: str, reason: str, ticket: str | None, as_json: bool) -> None:
    """Revoke a certificate as the help desk (any user's). A master user's certificate needs
    --ticket (R9: exit 1 with ticket-required without it), a general user's does not, as in the
    API and the console. The CRL publication is queued; exit 1 with already-revoked if it was
    revoked before."""
    view = revocation.revoke(context(), cli_actor(ticket), serial, reason=reason, ticket=ticket)
    if as_json:
        echo_json(_cert_summary(view))
        return
    click.echo(
        f"revoked {view.serial} of {view.login_id} ({view.org_id}) as {view.revocation_reason} "
        f"at {shown(view.revoked_at)}{f' (ticket {ticket})' if ticket else ''}; a CRL publication is queued"
    )


# --- background jobs -----------------------------------------------------------------------------
@click.group("jobs")
def jobs_group() -> None:
    """RQ background jobs."""


@jobs_group.command("failed")
@click.option("--queue", type=click.Choice(failed_jobs.QUEUES), help="Only this queue.")
@click.option("--requeue", is_flag=True, help="Put the failed jobs back on their queues (audited).")
@click.option("--job", "job_ids", multiple=True, metavar="JOB_ID", help="With --requeue: only this job (repeatable).")
@JSON
@handle_errors
def jobs_failed(queue: str | None, requeue: bool, job_ids: tuple[str, ...], as_json: bool) -> None:
    """List the jobs that failed after every retry, or requeue them with --requeue."""
    if job_ids and not requeue:
        raise click.UsageError("--job only goes with --requeue")
    ctx = context() if requeue else reading_context()  # listing only reads: it never creates a database
    if requeue:
        total = len(job_ids) if job_ids else len(failed_jobs.list_failed(ctx, queue))
        with click.progressbar(length=total, label="requeueing", file=sys.stderr) as bar:
            jobs = failed_jobs.requeue(ctx, cli_actor(), list(job_ids), queue=queue, progress=bar.update)
    else:
        jobs = failed_jobs.list_failed(ctx, queue)
    if as_json:
        echo_json(jobs)
        return
    echo_table(
        ["job_id", "queue", "function", "ended_at", "error"], [[j.job_id, j.queue, j.function, j.ended_at, j.error] for j in jobs]
    )
    click.echo(f"{len(jobs)} jobs {'requeued' if requeue else 'failed'}", err=True)


COMMANDS = (orgs_group, users_group, certs_group, revoke, jobs_group)
