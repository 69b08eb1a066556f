"""Background jobs as the API and the console see them: request a CRL publication, report a
job's status."""

from __future__ import annotations

import time
from typing import Any

from redis.exceptions import RedisError
from rq.exceptions import NoSuchJobError
from rq.job import JobStatus

from ca_service.context import Actor, ServiceContext
from ca_service.errors import NotFound, Unavailable
from ca_service.outbox import records as outbox
from ca_service.outbox import relay
from ca_service.queueing import fetch_job
from ca_service.services.audit.change import change

_STATES = {
    JobStatus.QUEUED: "queued",
    JobStatus.DEFERRED: "queued",
    JobStatus.SCHEDULED: "queued",
    JobStatus.STARTED: "started",
    JobStatus.FINISHED: "finished",
    JobStatus.FAILED: "failed",
    JobStatus.STOPPED: "failed",
    JobStatus.CANCELED: "failed",
}


def _unavailable() -> Unavailable:
    return Unavailable("the job queue (Redis) is unavailable; try again shortly", code="queue-unavailable")


# How long a request waits for a concurrent relay (the sweep, another request's) that took its
# entry first to record the covering job, before answering 503 (the publication still happens).
COVERING_JOB_WAIT_SECONDS = 2.0


def enqueue_crl_publication(ctx: ServiceContext, actor: Actor | None = None) -> dict[str, Any]:
    """Request a forced publication: an outbox entry (audited with `actor`, the console, in the
    same transaction), relayed at once like every entry. The answer names the job that covers
    the request: a forced publication already waiting in the queue covers it (it publishes
    everything committed when it starts), so two requests in a row may get the same job.

    Redis down: 503 before anything is recorded. Redis lost between the commit and the relay:
    503 too, and the entry stays pending; the sweep enqueues it when Redis is back."""
    if ctx.settings.redis_url is None:
        raise _unavailable()
    try:
        ctx.redis().ping()
    except RedisError:
        raise _unavailable() from None
    with change(ctx, actor) as uow:
        entry = uow.outbox(outbox.CRL_PUBLISH, reason="operator", force=True)
        if actor is not None:
            uow.audit("crl.publication_requested", target_type="ca", target_id="issuing")
        uow.session.flush()
        entry_id = entry.id
    deadline = time.monotonic() + COVERING_JOB_WAIT_SECONDS
    try:
        while (job_id := relay.covering_job(ctx, entry_id)) is None and time.monotonic() < deadline:
            time.sleep(0.05)
    except RedisError:
        raise _unavailable() from None
    if job_id is None:
        raise _unavailable()
    return {"job_id": job_id, "status": "queued"}


def job_status(ctx: ServiceContext, job_id: str) -> dict[str, Any]:
    if ctx.settings.redis_url is None:
        raise _unavailable()
    try:
        job = fetch_job(job_id, ctx.redis())
        status = _STATES.get(job.get_status(refresh=True) or JobStatus.QUEUED, "queued")
        result = job.return_value() if status == "finished" else None
        error = None
        if status == "failed":
            latest = job.latest_result()
            error = (latest.exc_string or "").strip().splitlines()[-1:] if latest else None
    except NoSuchJobError:
        raise NotFound(f"no job {job_id}", code="job-not-found") from None
    except RedisError:
        raise _unavailable() from None
    return {
        "job_id": job_id,
        "status": status,
        "result": result if isinstance(result, dict) else None,
        "error": error[0] if error else None,
    }
