"""RQ's failed jobs as the help desk sees them: list them, and requeue them (audited).

Whoever can write to Redis can put anything in a failed registry: a job id without a job, a job
whose data is a pickle gadget (the plain-data unpickler refuses it), a function the worker would
refuse. Such a job is listed as unknown (no function, its error says why) and never crashes the
listing; requeueing one is refused with `job-not-requeueable`."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from redis import Redis
from redis.exceptions import RedisError
from rq import Queue
from rq.exceptions import InvalidJobOperation, NoSuchJobError
from rq.job import Job

from ca_service.constants import QUEUE_NAMES
from ca_service.context import Actor, ServiceContext
from ca_service.errors import Conflict, InvalidInput, NotFound, Unavailable
from ca_service.queueing import JOB_FUNCTIONS, RENAMED_JOBS, fetch_jobs
from ca_service.queueing import queue as queue_of
from ca_service.services.audit.change import change

QUEUES = QUEUE_NAMES


@dataclass(frozen=True)
class FailedJob:
    job_id: str
    queue: str
    function: str | None
    enqueued_at: datetime | None
    ended_at: datetime | None
    error: str | None  # the last line of the exception: never arguments or a traceback's locals
    request_id: str | None
    known: bool = True  # readable, and one of the project's job functions: may be requeued


def _unavailable() -> Unavailable:
    return Unavailable("the job queue (Redis) is unavailable; try again shortly", code="queue-unavailable")


def _utc(value: datetime | None) -> datetime | None:
    return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value


def _unknown(job_id: str, queue: str, why: str) -> FailedJob:
    return FailedJob(job_id, queue, None, None, None, why, None, known=False)


def _view(job: Job, queue: str) -> FailedJob:
    try:
        view = _read(job, queue)
    except RedisError:
        raise
    except Exception as exc:
        return _unknown(job.id, queue, f"unreadable job ({type(exc).__name__}): not one this service wrote")
    if view.function not in JOB_FUNCTIONS and view.function not in RENAMED_JOBS:  # an old name runs as the new one
        return dataclasses.replace(view, function=None, known=False, error="not one of the service's job functions")
    return view


def _read(job: Job, queue: str) -> FailedJob:
    latest = job.latest_result()
    lines = (latest.exc_string or "").strip().splitlines() if latest is not None else []
    return FailedJob(
        job_id=job.id,
        queue=queue,
        function=job.func_name,
        enqueued_at=_utc(job.enqueued_at),
        ended_at=_utc(job.ended_at),
        error=lines[-1][:300] if lines else None,
        request_id=job.meta.get("request_id"),
    )


def _queues(ctx: ServiceContext, queue: str | None) -> list[Queue]:
    if ctx.settings.redis_url is None:
        raise _unavailable()
    if queue is not None and queue not in QUEUES:
        raise InvalidInput(f"queue must be one of {', '.join(QUEUES)}", fields={"queue": "unknown queue"})
    return [queue_of(name, ctx.redis()) for name in ([queue] if queue else QUEUES)]


def list_failed(ctx: ServiceContext, queue: str | None = None) -> list[FailedJob]:
    """Every job in the failed registries of the project's queues, oldest failure first."""
    try:
        found: list[FailedJob] = []
        for q in _queues(ctx, queue):
            ids = q.failed_job_registry.get_job_ids()
            found += [
                _view(job, q.name) if job is not None else _unknown(job_id, q.name, "no job data")
                for job_id, job in _fetch(ids, q.connection)
            ]
    except RedisError:
        raise _unavailable() from None
    return found


def _fetch(ids: list[str], conn: Redis) -> list[tuple[str, Job | None]]:
    """The jobs of `ids`; one whose hash cannot even be restored is None (RQ's fetch_many would
    give up on the whole list)."""
    try:
        return list(zip(ids, fetch_jobs(ids, conn), strict=True))
    except RedisError:
        raise
    except Exception:
        fetched: list[tuple[str, Job | None]] = []
        for job_id in ids:
            try:
                fetched.append((job_id, fetch_jobs([job_id], conn)[0]))
            except RedisError:
                raise
            except Exception:
                fetched.append((job_id, None))
        return fetched


def requeue(
    ctx: ServiceContext,
    actor: Actor,
    job_ids: Sequence[str] | None = None,
    *,
    queue: str | None = None,
    progress: Callable[[int], object] | None = None,
) -> list[FailedJob]:
    """Put failed jobs back on their queues (all of them, or those named), one audit event per
    job in the same transaction as its requeue: a job that could not be requeued is not audited."""
    jobs = list_failed(ctx, queue)
    if job_ids:
        by_id = {j.job_id: j for j in jobs}
        missing = [i for i in job_ids if i not in by_id]
        if missing:
            raise NotFound(f"no failed job {', '.join(missing)}", code="job-not-found")
        jobs = [by_id[i] for i in dict.fromkeys(job_ids)]
        unknown = [j.job_id for j in jobs if not j.known]
        if unknown:
            raise Conflict(
                f"job {', '.join(unknown)} is not one this service wrote (unreadable or a foreign function): "
                "not requeued; delete it from the failed registry",
                code="job-not-requeueable",
            )
    else:
        jobs = [j for j in jobs if j.known]  # "requeue all" leaves the unknown ones where they are
    done: list[FailedJob] = []
    try:
        for job in jobs:
            try:
                with change(ctx, actor) as uow:
                    uow.audit(
                        "job.requeued",
                        target_type="job",
                        target_id=job.job_id,
                        queue=job.queue,
                        function=job.function,
                        error=job.error,
                    )
                    try:
                        queue_of(job.queue, ctx.redis()).failed_job_registry.requeue(job.job_id)
                    except (InvalidJobOperation, NoSuchJobError):
                        raise _Gone from None  # requeued or deleted by someone else meanwhile: not audited
            except _Gone:
                continue
            finally:
                if progress is not None:
                    progress(1)
            done.append(job)
    except RedisError:
        raise _unavailable() from None
    return done


class _Gone(Exception):
    pass
