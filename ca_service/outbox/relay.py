"""The one road to RQ: relaying outbox entries right after commit and again by a periodic sweep,
and `enqueue`, which every job the project enqueues outside the scheduler goes through (the
relay, the lost-work recovery, the webhook deliveries' own retries).

An entry is marked dispatched only once RQ has accepted the job (or a job already waiting in
the queue covers it); if Redis is down the entry stays pending (attempts and last error
recorded) and the sweep enqueues it when Redis is back. Jobs are idempotent, so a duplicate
enqueue is harmless. An entry whose kind has no route stays pending too, logged at ERROR with
its attempts counted: a process that relays without having installed the routes must be seen.

CRL publications are coalesced: a publication job always publishes the database's state at
the moment it starts, so while one is still waiting in the queue (not started) it already
covers every revocation committed so far and no second job is enqueued. The waiting job's id is
kept in Redis (PENDING_CRL_JOB); a burst of 1,000 revocations thus puts one or two jobs in the
queue at a time instead of 1,000. A forced publication (an operator's "publish now") publishes
even when nothing is new, so only a waiting forced job (PENDING_FORCED_CRL_JOB) covers it, and
it covers everything else too. Two relays racing may both enqueue one: harmless.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import Any

from redis import Redis
from redis.exceptions import RedisError
from rq import Retry
from rq.exceptions import NoSuchJobError
from rq.job import Job, JobStatus

from ca_service.context import ServiceContext
from ca_service.outbox import records, routes
from ca_service.queueing import fetch_job, still_queued
from ca_service.queueing import queue as safe_queue
from ca_service.store import outbox as store
from ca_service.store.db import transaction
from ca_service.store.models import OutboxEntry

log = logging.getLogger("ca_service.outbox")

PENDING_CRL_JOB = "ca-service:crl-publication:waiting"  # id of the publication job not yet started
PENDING_FORCED_CRL_JOB = "ca-service:crl-publication:waiting-forced"  # the same, for a forced one
PENDING_CRL_TTL = 3600  # a job left waiting longer (no worker) is simply joined by a new one
_COVERING_JOB = "ca-service:crl-publication:request:"  # + outbox id: the job covering a forced request


def notice_email_job_id(notice_id: int) -> str:
    """A notice's email job has a stable id: after a Redis restart the sweep can tell whether it
    is still in Redis (ca_service/outbox/recovery.py)."""
    return f"notice-email-{notice_id}"


def retry_policy(intervals: Sequence[int]) -> Retry:
    """The project's one retry policy: after a failed attempt RQ runs the job again after each of
    `intervals` seconds in turn (CA_MAIL_RETRY_INTERVALS), then gives up."""
    return Retry(max=len(intervals), interval=list(intervals))


def enqueue(
    ctx: ServiceContext,
    kind: str,
    payload: Mapping[str, Any],
    *,
    outbox_id: int | None = None,
    request_id: str | None = None,
    delay: float = 0.0,
) -> Job:
    """Enqueue the job of `kind`'s route with `payload` as its keyword arguments: on the route's
    queue, with the retry policy if the route is retried, under a stable id for a notice email,
    after `delay` seconds if given (RQ's scheduler, which `ca-service worker` runs). Raises
    routes.NoRoute for a kind without a route and RedisError when Redis refuses."""
    found = routes.route(kind)
    kwargs = {**payload, **({"outbox_id": outbox_id} if outbox_id is not None else {})}
    options: dict[str, Any] = {
        "kwargs": kwargs,
        "meta": {"request_id": request_id},  # bound to every log line of the job (workers/logging_context.py)
        "retry": retry_policy(ctx.settings.mail_retry_intervals) if found.retried else None,
        "job_id": notice_email_job_id(int(payload["notice_id"])) if kind == records.NOTICE_EMAIL else None,
    }
    queue = safe_queue(found.queue, ctx.redis())
    if delay > 0:
        return queue.enqueue_in(timedelta(seconds=delay), found.job, **options)
    return queue.enqueue(found.job, **options)


def waiting_crl_job(conn: Redis, *, forced: bool = False) -> str | None:
    """The id of a CRL publication job (forced, or not) still waiting in the queue, if any.

    Waiting means `queued` and still in the queue's list: RQ's worker takes a job id off the
    list before it marks the job started, so a worker stopped in between leaves a `queued` job
    that nobody holds. Joining later revocations to it would keep them off the CRL."""
    raw = conn.get(PENDING_FORCED_CRL_JOB if forced else PENDING_CRL_JOB)
    if raw is None:
        return None
    job_id = raw.decode() if isinstance(raw, bytes) else str(raw)
    try:
        job = fetch_job(job_id, conn)
    except NoSuchJobError:
        return None
    if job.get_status(refresh=True) != JobStatus.QUEUED:
        return None
    return job_id if still_queued(conn, [(job_id, job.origin)])[0] else None


def enqueue_publication(
    ctx: ServiceContext, payload: Mapping[str, Any] | None = None, *, outbox_id: int | None = None, request_id: str | None = None
) -> str:
    """Enqueue a CRL publication unless a waiting one covers it; returns the covering job's id."""
    payload = payload or {}
    force = bool(payload.get("force"))
    conn = ctx.redis()
    waiting = waiting_crl_job(conn, forced=True) or (None if force else waiting_crl_job(conn))
    if waiting is not None:
        return waiting
    job = enqueue(ctx, records.CRL_PUBLISH, payload, outbox_id=outbox_id, request_id=request_id)
    conn.set(PENDING_FORCED_CRL_JOB if force else PENDING_CRL_JOB, job.id, ex=PENDING_CRL_TTL)
    return job.id


def covering_job(ctx: ServiceContext, outbox_id: int) -> str | None:
    """The publication job that covers the forced request `outbox_id`, once a relay dispatched it."""
    raw = ctx.redis().get(f"{_COVERING_JOB}{outbox_id}")
    return None if raw is None else raw.decode() if isinstance(raw, bytes) else str(raw)


def _dispatch(ctx: ServiceContext, entry: OutboxEntry, crl_jobs: dict[bool, str]) -> None:
    routes.route(entry.kind)  # a kind without a route fails here, also when a waiting job covers it
    payload = json.loads(entry.payload)
    if entry.kind != records.CRL_PUBLISH:
        enqueue(ctx, entry.kind, payload, outbox_id=entry.id, request_id=entry.request_id)
        return
    force = bool(payload.get("force"))
    job_id = crl_jobs.get(True) or (None if force else crl_jobs.get(False))
    if job_id is None:
        job_id = crl_jobs[force] = enqueue_publication(ctx, payload, outbox_id=entry.id, request_id=entry.request_id)
    if force:  # the operator who asked follows this job (services/background/job_requests.py)
        ctx.redis().set(f"{_COVERING_JOB}{entry.id}", job_id, ex=PENDING_CRL_TTL)


def dispatch_pending(ctx: ServiceContext, *, limit: int = 500) -> int:
    """Enqueue pending entries, oldest first. Returns how many were dispatched."""
    if ctx.settings.redis_url is None:
        return 0
    dispatched = 0
    crl_jobs: dict[bool, str] = {}  # forced or not -> the publication covering this batch's CRL entries
    with transaction(ctx.sessions) as session:
        for entry in store.pending(session, limit):
            try:
                _dispatch(ctx, entry, crl_jobs)
            except routes.NoRoute as exc:
                entry.attempts += 1
                entry.last_error = str(exc)[:500]
                log.error("outbox relay: entry %s stays pending: %s", entry.id, exc)
                continue
            except RedisError as exc:
                entry.attempts += 1
                entry.last_error = f"{type(exc).__name__}: {exc}"[:500]
                log.warning("outbox relay: Redis unavailable, %s stays pending", entry.kind)
                break
            entry.dispatched_at = ctx.clock.now()
            dispatched += 1
    if dispatched:
        log.debug("outbox relay: %s entries dispatched (CRL jobs %s)", dispatched, crl_jobs)
    return dispatched
