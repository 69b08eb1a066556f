"""CRL status and "publish now" with the job's live status; failed jobs and failed notice
emails with retry; the audit trail filtered, with the checkpoint status."""

from __future__ import annotations

from datetime import datetime, timedelta

from flask import flash, redirect, request, url_for
from flask_babel import gettext as _
from werkzeug.wrappers import Response as BaseResponse

from ca_service.console import audit_words
from ca_service.console.blueprint import actor, bp, ctx, page
from ca_service.console.i18n import local_time
from ca_service.errors import InvalidInput, ServiceError
from ca_service.services.background import failed_jobs
from ca_service.services.background import job_requests as jobs
from ca_service.services.events import admin as webhooks
from ca_service.services.helpdesk import lookups as helpdesk
from ca_service.services.helpdesk import pages as helpdesk_pages
from ca_service.services.notices import scan as notices

JOB_REFRESH_SECONDS = 1


@bp.route("/crl")
def crl() -> tuple[str, int]:
    return page("crl.html", view=helpdesk_pages.crl_overview(ctx()), now=ctx().clock.now())


@bp.route("/crl/publish", methods=["POST"])
def crl_publish() -> BaseResponse:
    job = jobs.enqueue_crl_publication(ctx(), actor())
    return redirect(url_for("console.job", job_id=job["job_id"]))


@bp.route("/jobs/<job_id>")
def job(job_id: str) -> tuple[str, int]:
    status = jobs.job_status(ctx(), job_id)
    if status.get("result"):  # its times arrive as RFC 3339 in UTC: shown like every time in the console
        status = {**status, "result": {k: _shown(k, v) for k, v in status["result"].items()}}
    done = status["status"] in ("finished", "failed")
    return page("job.html", job=status, refresh=None if done else JOB_REFRESH_SECONDS)


@bp.route("/failures")
def failures() -> tuple[str, int]:
    try:
        failed, queue_error = failed_jobs.list_failed(ctx()), None
    except ServiceError as err:
        failed, queue_error = [], err.detail
    emails = helpdesk.list_notices(ctx(), failed_only=True, limit=200)
    deliveries = webhooks.list_deliveries(ctx(), failed_only=True, limit=200)
    return page("failures.html", failed=failed, queue_error=queue_error, emails=emails, deliveries=deliveries)


@bp.route("/failures/jobs/<job_id>/retry", methods=["POST"])
def retry_job(job_id: str) -> BaseResponse:
    failed_jobs.requeue(ctx(), actor(), [job_id])
    flash(_("The job was put back on its queue."))
    return redirect(url_for("console.failures"))


@bp.route("/failures/notices/<int:notice_id>/retry", methods=["POST"])
def retry_notice(notice_id: int) -> BaseResponse:
    notices.retry_email(ctx(), actor(), notice_id)
    flash(_("The notice email will be sent again."))
    return redirect(url_for("console.failures"))


@bp.route("/failures/webhooks/<int:delivery_id>/retry", methods=["POST"])
def retry_webhook(delivery_id: int) -> BaseResponse:
    webhooks.retry(ctx(), actor(), delivery_id)
    flash(_("The event will be sent to the front end again."))
    return redirect(url_for("console.failures"))


def _day(name: str, *, end: bool = False) -> datetime | None:
    """A YYYY-MM-DD field as the start (or end) of that day in Japan time."""
    raw = request.args.get(name, "").strip()
    if not raw:
        return None
    try:
        day = datetime.strptime(raw, "%Y-%m-%d").replace(tzinfo=ctx().settings.tz)
    except ValueError:
        raise InvalidInput(f"{name} must be a date YYYY-MM-DD", fields={name: "not a date"}) from None
    return day + timedelta(days=1) if end else day


@bp.route("/audit")
def audit() -> tuple[str, int]:
    args = request.args
    query = helpdesk.AuditQuery(
        actor=args.get("actor", "").strip() or None,
        action=args.get("action", "").strip() or None,
        target=args.get("target", "").strip() or None,
        since=_day("since"),
        until=_day("until", end=True),
        limit=200,
    )
    events = helpdesk.audit_events(ctx(), query)
    checkpoint = helpdesk_pages.checkpoint_status(ctx())
    who = audit_words.actors(ctx(), events)
    return page("audit.html", events=events, who=who, args=args, checkpoint=checkpoint, now=ctx().clock.now())


def _shown(key: str, value: object) -> object:
    if key in ("this_update", "next_update") and isinstance(value, str):
        return local_time(value, with_seconds=True)
    return audit_words.value_text(key, value)  # `published: True` as a word, not Python's True
