"""Telling work a Redis restart (no persistence) or an eviction dropped from work still in hand.

The outbox marks an entry dispatched once RQ has accepted its job; if Redis then loses its data,
the job is gone while the database still says the work is not done. These helpers let the sweep
(ca_service/services/background/redispatch.py) tell a lost job from one still in hand; it
enqueues a lost one again through the relay (relay.enqueue, relay.enqueue_publication).
A notice email's job has a stable id (`notice-email-<id>`), so "is it still in Redis" is one
EXISTS; a CRL publication is in hand while one waits in the queue or runs in a live worker.

A job a worker had started when it died (SIGKILL, host lost) stays in RQ's StartedJobRegistry
until its execution's heartbeat TTL runs out (job_monitoring_interval + 60 s, ~90 s) and RQ's
`StartedJobRegistry.cleanup()` calls it abandoned. That job is not in hand: its worker's own
registration (`rq:worker:<name>`, which RQ refreshes every CA_WORKER_HEARTBEAT_SECONDS while a
job runs) is gone, says it died, or has not beaten for longer than the heartbeat + a few seconds.
Calling a live but slow worker dead costs one more publication (they are idempotent); calling a
dead one alive would keep revocations off the CRL.
"""

from __future__ import annotations

from datetime import UTC, datetime

from redis import Redis
from rq import Queue, Worker
from rq.executions import Execution
from rq.registry import StartedJobRegistry
from rq.utils import utcparse

from ca_service.outbox import records, routes
from ca_service.outbox.relay import notice_email_job_id, waiting_crl_job
from ca_service.queueing import still_queued


def lost_email_jobs(conn: Redis, notice_ids: list[int]) -> list[int]:
    """The notices (of `notice_ids`) that have no job in Redis: not queued, running, retrying
    or recently finished. A job `queued` but in no queue is lost too: RQ's worker takes a job off
    the queue before it marks it started, and a worker stopped in between drops it."""
    if not notice_ids:
        return []
    keys = [f"{Queue.job_class.redis_job_namespace_prefix}{notice_email_job_id(n)}" for n in notice_ids]
    with conn.pipeline(transaction=False) as pipe:
        for key in keys:
            pipe.hmget(key, ["status", "origin"])
        found: list[list[bytes | None]] = pipe.execute()
    queued = [
        (n, origin.decode()) for n, (status, origin) in zip(notice_ids, found, strict=True) if status == b"queued" and origin
    ]
    in_queue = still_queued(conn, [(notice_email_job_id(n), origin) for n, origin in queued])
    dropped = {n for (n, _), held in zip(queued, in_queue, strict=True) if not held}
    return [n for n, (status, _) in zip(notice_ids, found, strict=True) if status is None or n in dropped]


DEAD_AFTER_MISSED_SECONDS = 5  # a worker's heartbeat this much later than due: the worker is dead


def crl_publication_in_hand(conn: Redis, *, worker_heartbeat_seconds: int) -> bool:
    """A publication job waits in the queue or is running in a live worker (it publishes what is
    committed)."""
    if waiting_crl_job(conn) is not None or waiting_crl_job(conn, forced=True) is not None:
        return True
    running = StartedJobRegistry(routes.route(records.CRL_PUBLISH).queue, connection=conn)
    stale_after = worker_heartbeat_seconds + DEAD_AFTER_MISSED_SECONDS
    return any(
        _worker_alive(conn, _worker_of(conn, job_id, execution_id), stale_after)
        for job_id, execution_id in running.get_job_and_execution_ids()
    )


def _worker_of(conn: Redis, job_id: str, execution_id: str) -> str:
    try:
        return Execution.fetch(execution_id, job_id, conn).worker_name
    except (ValueError, KeyError):  # the execution's hash expired or is malformed: nobody runs it
        return ""


def _worker_alive(conn: Redis, worker_name: str, stale_after: float) -> bool:
    """RQ's registration of the worker says it is alive and has beaten within `stale_after` s."""
    if not worker_name:
        return False
    fields: list[bytes | None] = conn.hmget(f"{Worker.redis_worker_namespace_prefix}{worker_name}", ["last_heartbeat", "death"])  # type: ignore[assignment]
    beat, death = fields
    if beat is None or death is not None:
        return False  # never registered, expired, or registered its death
    try:
        age = (datetime.now(UTC) - utcparse(beat.decode()).replace(tzinfo=UTC)).total_seconds()
    except ValueError:
        return False
    return age <= stale_after
