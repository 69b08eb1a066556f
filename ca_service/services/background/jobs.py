"""The background jobs RQ runs: thin wrappers around service functions, each idempotent (a
duplicate enqueue, a retry or a second worker running the same job does no harm). Referenced by
function object everywhere: the outbox relay (outbox/routes.py, registered below), the API's
publication request (services/background/job_requests.py) and the scheduler (workers/scheduler.py). workers/jobs.py
re-exports them under their old names, which jobs already queued still carry."""

from __future__ import annotations

from typing import Any

from rq import get_current_job

from ca_service.constants import QueueName
from ca_service.context import ServiceContext, process_context
from ca_service.outbox import records, relay, routes
from ca_service.queueing import ForeignJobRefused
from ca_service.services.audit import trail as audit
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


def _ctx() -> ServiceContext:
    """The worker's service context, with the job's request id (from the API request that caused
    it, carried in the job's meta by the outbox relay) bound to every log line of the job."""
    job = get_current_job()
    if job is not None:
        bind_log(job_id=job.id, request_id=job.meta.get("request_id"))
    return process_context()


def publish_crl_job(outbox_id: int | None = None, force: bool = False, **_payload: Any) -> dict[str, Any]:
    """Publish the CRLs if a revocation is not on them yet (coalesces bursts), or always with force."""
    results = crl_publication.publish(
        _ctx(), force=force, settle_seconds=SETTLE_SECONDS, min_interval_seconds=MIN_INTERVAL_SECONDS
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
    outcome = mailer.send_notice_email(_ctx(), notice_id, final_attempt=final)
    return {"notice_id": outcome.notice_id, "status": outcome.status, "attempts": outcome.attempts}


def expiry_scan_job(as_of: str | None = None) -> dict[str, Any]:
    """Scheduled daily: the scan as of the service clock's now. A date in a queued job would come
    from Redis, and whoever can write there could have an expiry email sent for a certificate
    issued today (its unique notice then blocking the real one): a job carrying `as_of` is
    refused (issue 26). An operator scans as of another moment with `ca-service notices scan
    --as-of`, which calls the service directly."""
    if as_of is not None:
        raise ForeignJobRefused("expiry_scan_job takes no as_of from the queue (use `ca-service notices scan --as-of`)")
    result = notices.scan(_ctx())
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
    ctx = _ctx()
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
    return webhook_delivery.deliver_stream(_ctx(), stream, url)


routes.register(records.CRL_PUBLISH, QueueName.CRL, publish_crl_job)
routes.register(records.NOTICE_EMAIL, QueueName.MAIL, send_notice_email_job, retried=True)
routes.register(WEBHOOK_DELIVER, QueueName.WEBHOOKS, deliver_webhooks_job)
