"""Relaying outbox entries into RQ: right after commit, and again by a periodic sweep.

An entry is marked dispatched only once RQ has accepted the job (or a job already waiting in
the queue covers it); if Redis is down the entry stays pending (attempts and last error
recorded) and the sweep enqueues it when Redis is back. Jobs are idempotent, so a duplicate
enqueue is harmless.

CRL publications are coalesced: a publication job always publishes the database's state at
the moment it starts, so while one is still waiting in the queue (not started) it already
covers every revocation committed so far and no second job is enqueued. The waiting job's id is
kept in Redis (PENDING_CRL_JOB); a burst of 1,000 revocations thus puts one or two jobs in the
queue at a time instead of 1,000. Two relays racing may both enqueue one: harmless.
"""

from __future__ import annotations

import json
import logging

from redis import Redis
from redis.exceptions import RedisError
from rq import Retry
from rq.exceptions import NoSuchJobError
from rq.job import Job, JobStatus

from ca_service.context import ServiceContext
from ca_service.outbox import records, routes
from ca_service.queueing import fetch_job
from ca_service.queueing import queue as safe_queue
from ca_service.store import outbox as store
from ca_service.store.db import transaction
from ca_service.store.models import OutboxEntry

log = logging.getLogger("ca_service.outbox")

PENDING_CRL_JOB = "ca-service:crl-publication:waiting"  # id of the publication job not yet started
PENDING_CRL_TTL = 3600  # a job left waiting longer (no worker) is simply joined by a new one


def notice_email_job_id(notice_id: int) -> str:
    """A notice's email job has a stable id: after a Redis restart the sweep can tell whether it
    is still in Redis (ca_service/outbox/recovery.py)."""
    return f"notice-email-{notice_id}"


def enqueue_entry(ctx: ServiceContext, entry: OutboxEntry) -> Job:
    found = routes.route(entry.kind)
    assert found is not None
    payload = json.loads(entry.payload)
    queue = safe_queue(found.queue, ctx.redis())
    retry = None
    job_id = None
    if found.retried:  # SMTP failures: RQ retries with backoff
        intervals = list(ctx.settings.mail_retry_intervals)
        retry = Retry(max=len(intervals), interval=intervals)
    if entry.kind == records.NOTICE_EMAIL:
        job_id = notice_email_job_id(int(payload["notice_id"]))
    return queue.enqueue(
        found.job, kwargs={"outbox_id": entry.id, **payload}, meta={"request_id": entry.request_id}, retry=retry, job_id=job_id
    )


def waiting_crl_job(conn: Redis) -> str | None:
    """The id of a CRL publication job still waiting in the queue (not started), if any."""
    raw = conn.get(PENDING_CRL_JOB)
    if raw is None:
        return None
    job_id = raw.decode() if isinstance(raw, bytes) else str(raw)
    try:
        status = fetch_job(job_id, conn).get_status(refresh=True)
    except NoSuchJobError:
        return None
    return job_id if status == JobStatus.QUEUED else None


def _enqueue_crl_publication(ctx: ServiceContext, entry: OutboxEntry) -> str:
    """Enqueue a publication unless one is waiting already; returns the covering job's id."""
    conn = ctx.redis()
    waiting = waiting_crl_job(conn)
    if waiting is not None:
        return waiting
    job = enqueue_entry(ctx, entry)
    conn.set(PENDING_CRL_JOB, job.id, ex=PENDING_CRL_TTL)
    return job.id


def dispatch_pending(ctx: ServiceContext, *, limit: int = 500) -> int:
    """Enqueue pending entries, oldest first. Returns how many were dispatched."""
    if ctx.settings.redis_url is None:
        return 0
    dispatched = 0
    crl_job: str | None = None  # one publication covers every CRL entry of this batch
    with transaction(ctx.sessions) as session:
        for entry in store.pending(session, limit):
            if routes.route(entry.kind) is None:
                continue  # no job for this kind in this process (services.background.jobs not imported)
            try:
                if entry.kind == records.CRL_PUBLISH:
                    if crl_job is None:
                        crl_job = _enqueue_crl_publication(ctx, entry)
                else:
                    enqueue_entry(ctx, entry)
            except RedisError as exc:
                entry.attempts += 1
                entry.last_error = f"{type(exc).__name__}: {exc}"[:500]
                log.warning("outbox relay: Redis unavailable, %s stays pending", entry.kind)
                break
            entry.dispatched_at = ctx.clock.now()
            dispatched += 1
    if dispatched:
        log.debug("outbox relay: %s entries dispatched (CRL job %s)", dispatched, crl_job)
    return dispatched
