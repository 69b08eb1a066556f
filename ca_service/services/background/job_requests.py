"""Background jobs as the API sees them: enqueue a CRL publication, report a job's status."""

from __future__ import annotations

from typing import Any

from redis.exceptions import RedisError
from rq.exceptions import NoSuchJobError
from rq.job import JobStatus

from ca_service.constants import QueueName
from ca_service.context import Actor, ServiceContext
from ca_service.errors import NotFound, Unavailable
from ca_service.queueing import fetch_job, queue
from ca_service.services.audit import trail as audit
from ca_service.services.audit.post_commit import after_commit
from ca_service.services.background import jobs as tasks
from ca_service.store.db import transaction

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


def enqueue_crl_publication(ctx: ServiceContext, actor: Actor | None = None) -> dict[str, Any]:
    """Queue a forced publication; with `actor` (the console), audited in the same transaction
    as the enqueue (no audit event for a request Redis refused)."""
    if ctx.settings.redis_url is None:
        raise _unavailable()
    try:
        if actor is None:
            job = queue(QueueName.CRL, ctx.redis()).enqueue(tasks.publish_crl_job, kwargs={"force": True})
        else:
            with transaction(ctx.sessions) as session:
                job = queue(QueueName.CRL, ctx.redis()).enqueue(tasks.publish_crl_job, kwargs={"force": True})
                audit.record(session, ctx, actor, "crl.publication_requested", "job", job.id)
            after_commit(ctx)
    except RedisError:
        raise _unavailable() from None
    return {"job_id": job.id, "status": "queued"}


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
