"""Putting work back into RQ that a Redis restart (no persistence) or an eviction dropped.

The outbox marks an entry dispatched once RQ has accepted its job; if Redis then loses its data,
the job is gone while the database still says the work is not done. These helpers let the sweep
(ca_service/services/redispatch.py) tell a lost job from one still in hand and enqueue it again.
A notice email's job has a stable id (`notice-email-<id>`), so "is it still in Redis" is one
EXISTS; a CRL publication is in hand while one waits in the queue or runs.
"""

from __future__ import annotations

from redis import Redis
from rq import Queue, Retry
from rq.registry import StartedJobRegistry

from ca_service.context import ServiceContext
from ca_service.outbox import records, routes
from ca_service.outbox.relay import PENDING_CRL_JOB, PENDING_CRL_TTL, notice_email_job_id, waiting_crl_job
from ca_service.queueing import queue as safe_queue


def _route(kind: str) -> routes.Route:
    found = routes.route(kind)
    assert found is not None, kind
    return found


def lost_email_jobs(conn: Redis, notice_ids: list[int]) -> list[int]:
    """The notices (of `notice_ids`) that have no job in Redis: not queued, running, retrying
    or recently finished."""
    if not notice_ids:
        return []
    with conn.pipeline(transaction=False) as pipe:
        for notice_id in notice_ids:
            pipe.exists(f"{Queue.job_class.redis_job_namespace_prefix}{notice_email_job_id(notice_id)}")
        present = pipe.execute()
    return [n for n, found in zip(notice_ids, present, strict=True) if not found]


def enqueue_notice_email(ctx: ServiceContext, notice_id: int) -> None:
    intervals = list(ctx.settings.mail_retry_intervals)
    mail = _route(records.NOTICE_EMAIL)
    safe_queue(mail.queue, ctx.redis()).enqueue(
        mail.job,
        kwargs={"notice_id": notice_id},
        job_id=notice_email_job_id(notice_id),
        retry=Retry(max=len(intervals), interval=intervals),
    )


def crl_publication_in_hand(conn: Redis) -> bool:
    """A publication job waits in the queue or is running (it publishes what is committed)."""
    queue = _route(records.CRL_PUBLISH).queue
    return waiting_crl_job(conn) is not None or StartedJobRegistry(queue, connection=conn).count > 0


def enqueue_crl_publication(ctx: ServiceContext) -> str:
    conn = ctx.redis()
    crl = _route(records.CRL_PUBLISH)
    job = safe_queue(crl.queue, conn).enqueue(crl.job)
    conn.set(PENDING_CRL_JOB, job.id, ex=PENDING_CRL_TTL)
    return job.id
