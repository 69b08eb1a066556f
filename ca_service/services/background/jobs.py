"""The background jobs RQ runs: thin wrappers around service functions, each idempotent (a
duplicate enqueue, a retry or a second worker running the same job does no harm), each getting
its context from `job_context()`. Referenced by function object: the outbox relay through ROUTES
(installed by `register_routes()`), and the scheduler (workers/scheduler.py). workers/jobs.py
re-exports them under the names "workers.jobs.<name>", which jobs queued by name still carry."""

from __future__ import annotations

from typing import Any

from rq import get_current_job

from ca_service.constants import QueueName
from ca_service.context import ServiceContext, process_context
from ca_service.outbox import records, relay, routes
from ca_service.outbox.routes import Route
from ca_service.queueing import ForeignJobRefused
from ca_service.services.audit import checkpoints as audit_checkpoints
from ca_service.services.audit import trail as audit
from ca_service.services.authority import responder_certificates
from ca_service.services.background import redispatch
from ca_service.services.crl import publication as crl_publication
from ca_service.services.events import delivery as webhook_delivery
from ca_service.services.events.recording import WEBHOOK_DELIVER
from ca_service.services.helpdesk import approvals
from ca_service.services.notices import mailer
from ca_service.services.notices import scan as notices
from ca_service.timefmt import rfc3339
from config.logging import bind as bind_log

# A revocation waits SETTLE_SECONDS for the rest of its burst, and CRLs are at least
# MIN_INTERVAL_SECONDS apart: a burst of 1,000 revocations makes a handful of CRLs, and the last
# revocation is on one within ~2 x (MIN_INTERVAL_SECONDS + publication time) of its commit.
SETTLE_SECONDS = 1.0
MIN_INTERVAL_SECONDS = 5.0

# The scheduler runs the audit checkpoint job this often; it signs only when events were written
# since the last checkpoint, so a checkpoint is never more than a minute behind (DESIGN: at least
# every 5 minutes).
CHECKPOINT_SECONDS = 60


def job_context() -> ServiceContext:
    """The context of every job (and of the scheduler): built once per process and renewed in a
    forked work horse (ca_service.context.process_context), with the routes installed (a job's
    change relays outbox entries) and the job's request id (from the API request that caused it,
    carried in the job's meta by the relay) bound to every log line of the job."""
    register_routes()
    job = get_current_job()
    if job is not None:
        bind_log(job_id=job.id, request_id=job.meta.get("request_id"))
    return process_context(pool_size=2)


def publish_crl_job(outbox_id: int | None = None, force: bool = False, **_payload: Any) -> dict[str, Any]:
    """Publish the CRLs if a revocation is not on them yet (coalesces bursts), or always with force."""
    results = crl_publication.publish(
        job_context(), force=force, settle_seconds=SETTLE_SECONDS, min_interval_seconds=MIN_INTERVAL_SECONDS
    )
    issuing = results[0]
    return {
        "crl_number": issuing.crl_number,
        "this_update": rfc3339(issuing.this_update),
        "next_update": rfc3339(issuing.next_update),
        "entries": issuing.entries,
        "published": issuing.published,
    }


def republish_crl_job() -> dict[str, Any]:
    """Scheduled: republish well before nextUpdate even without revocations."""
    return publish_crl_job(force=True)


def send_notice_email_job(notice_id: int, outbox_id: int | None = None, **_payload: Any) -> dict[str, Any]:
    job = get_current_job()
    final = job is None or not job.retries_left  # no retry left (or none configured): give up after this one
    outcome = mailer.send_notice_email(job_context(), notice_id, final_attempt=final)
    return {"notice_id": outcome.notice_id, "status": outcome.status, "attempts": outcome.attempts}


def expiry_scan_job(as_of: str | None = None) -> dict[str, Any]:
    """Scheduled daily: the scan as of the service clock's now. A date in a queued job would come
    from Redis, and whoever can write there could have an expiry email sent for a certificate
    issued today (its unique notice then blocking the real one): a job carrying `as_of` is
    refused. An operator scans as of another moment with `ca-service notices scan
    --as-of`, which calls the service directly."""
    if as_of is not None:
        raise ForeignJobRefused("expiry_scan_job takes no as_of from the queue (use `ca-service notices scan --as-of`)")
    result = notices.scan(job_context())
    return {
        "as_of": rfc3339(result.as_of),
        "examined": result.examined,
        "created": result.created,
        "emails_queued": result.emails_queued,
    }


def sweep_job() -> dict[str, int]:
    """Scheduled every few seconds: relay outbox entries left pending (e.g. Redis was down), enqueue
    again the work a restarted Redis lost, settle approvals whose approving request died
    mid-action, seal audit events left unsealed, and wake webhook deliveries whose job was lost."""
    ctx = job_context()
    dispatched = relay.dispatch_pending(ctx)
    return {
        "dispatched": dispatched,
        "redispatched": redispatch.redispatch_lost(ctx),
        "approvals_settled": approvals.settle_interrupted(ctx),
        "sealed": audit.seal_pending(ctx),
        "webhooks": webhook_delivery.redispatch(ctx),
    }


def deliver_webhooks_job(stream: str, url: str, outbox_id: int | None = None, **_payload: Any) -> dict[str, Any]:
    """Deliver a login ID's pending events to one receiver, oldest first (services/events)."""
    return webhook_delivery.deliver_stream(job_context(), stream, url)


def rotate_ocsp_responders_job(**_: Any) -> list[dict[str, Any]]:
    """Scheduled (and once at scheduler start-up): ensure every unexpired issuing CA has a fresh
    OCSP responder. One is replaced once a third of its lifetime (default 30 days) is left, so a
    run every few hours leaves ten days of slack before any responder expires."""
    return [
        {
            "issuer": r.issuer_name,
            "responder": r.responder_name,
            "serial": r.serial,
            "not_after": rfc3339(r.not_after),
            "created": r.created,
        }
        for r in responder_certificates.ensure_all_responders(job_context())
    ]


def audit_checkpoint_job(**_: Any) -> dict[str, Any] | None:
    """Scheduled every CHECKPOINT_SECONDS: sign a checkpoint of the audit chain if it advanced."""
    return audit_checkpoints.create(job_context(), only_if_advanced=True)


# Where each kind of outbox entry goes (ca_service/outbox/routes.py).
ROUTES: dict[str, Route] = {
    records.CRL_PUBLISH: Route(QueueName.CRL, publish_crl_job),
    records.NOTICE_EMAIL: Route(QueueName.MAIL, send_notice_email_job, retried=True),  # SMTP failures: RQ retries
    WEBHOOK_DELIVER: Route(QueueName.WEBHOOKS, deliver_webhooks_job),  # its own backoff (services/events/delivery.py)
}


def register_routes() -> None:
    """Install ROUTES for this process's outbox relay. Called at start-up by every process that
    commits changes: the API app, the CLI, the scheduler, and every job (job_context)."""
    routes.install(ROUTES)
