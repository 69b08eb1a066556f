"""RQ jobs made safe against whoever can write to Redis.

Whoever can write to Redis can write a job, and plain RQ would (a) import and call any function
the job names, with any arguments, and (b) unpickle the job's data, metadata and result, and
unpickling runs code. Both happen in the worker, which holds the CA passphrase, and (b) also in
the API when it reads a job's status. So:

- `SafeSerializer` writes pickles as RQ does (jobs enqueued by plain RQ clients stay readable)
  but loads them with an unpickler that can build plain data only: no class or function is
  looked up except a few date/time types. A pickle gadget fails to load and nothing runs.
- `AllowlistJob` refuses, before importing anything, a job whose function is not one of
  `JOB_FUNCTIONS`, or that names an instance or a callback: it fails, is logged, and nothing
  named in Redis is imported or called.

The worker (workers/logging_context.py) and everything in the project that reads jobs use both.
"""

from __future__ import annotations

import io
import logging
import pickle
from collections.abc import Sequence
from functools import partial
from typing import Any, ClassVar

from redis import Redis
from rq import Queue
from rq.exceptions import DeserializationError
from rq.job import Job
from rq.utils import import_attribute

log = logging.getLogger("ca_service.jobs")

# Every function the project enqueues. RQ names a job enqueued as a function object by where it is
# defined: the outbox relay and the scheduler enqueue services/background/jobs.py's functions
# (workers/jobs.py only re-exports some of them). The "workers.jobs.*" spellings are the same
# functions, for jobs enqueued by name. Adding a job means adding it here
# (tests/unit/test_queueing_allowlist.py).
JOB_FUNCTIONS: frozenset[str] = frozenset(
    {
        "ca_service.services.background.jobs.publish_crl_job",
        "ca_service.services.background.jobs.republish_crl_job",
        "ca_service.services.background.jobs.send_notice_email_job",
        "ca_service.services.background.jobs.expiry_scan_job",
        "ca_service.services.background.jobs.sweep_job",
        "ca_service.services.background.jobs.deliver_webhooks_job",
        "ca_service.services.background.jobs.rotate_ocsp_responders_job",
        "ca_service.services.background.jobs.audit_checkpoint_job",
        "workers.jobs.publish_crl_job",
        "workers.jobs.republish_crl_job",
        "workers.jobs.send_notice_email_job",
        "workers.jobs.expiry_scan_job",
        "workers.jobs.sweep_job",
    }
)

# Jobs queued before a release that moved job functions carry the functions' old dotted names.
# For one release the worker still runs them, as the function each was renamed to; any other
# name under an old module is refused like every name not in JOB_FUNCTIONS:
# - services/ regrouped into packages: the old jobs module below -> services.background.jobs;
# - every job function in one module: workers.ocsp_jobs and workers.audit_jobs (the scheduler's
#   periodic jobs) -> services.background.jobs.
_OLD_JOBS_MODULE = "ca_service.services.tasks"  # regroup:keep (the name queued jobs carry)
_JOBS = "ca_service.services.background.jobs"
RENAMED_JOBS: dict[str, str] = {
    **{
        f"{_OLD_JOBS_MODULE}.{name}": f"{_JOBS}.{name}"
        for name in ("publish_crl_job", "republish_crl_job", "send_notice_email_job", "expiry_scan_job", "sweep_job")
    },
    "workers.ocsp_jobs.rotate_ocsp_responders_job": f"{_JOBS}.rotate_ocsp_responders_job",
    "workers.audit_jobs.audit_checkpoint_job": f"{_JOBS}.audit_checkpoint_job",
}

# The only globals a job's pickle may name: plain date/time values in arguments and results.
_SAFE_GLOBALS: frozenset[tuple[str, str]] = frozenset(
    {
        ("datetime", "datetime"),
        ("datetime", "date"),
        ("datetime", "time"),
        ("datetime", "timedelta"),
        ("datetime", "timezone"),
        ("builtins", "set"),
        ("builtins", "frozenset"),
    }
)


class ForeignJobRefused(Exception):
    """A job in Redis that the project did not write: never imported, never called."""


class _PlainDataUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _SAFE_GLOBALS:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refused to load {module[:100]}.{name[:100]} from a job in Redis")


def _loads(data: bytes) -> Any:
    return _PlainDataUnpickler(io.BytesIO(data)).load()


class SafeSerializer:
    """RQ serializer: pickle out (as RQ's default), plain-data-only unpickling in."""

    dumps: ClassVar[Any] = partial(pickle.dumps, protocol=pickle.HIGHEST_PROTOCOL)
    loads: ClassVar[Any] = staticmethod(_loads)


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 200 else text[:200] + "..."


class AllowlistJob(Job):
    """A job that runs only the project's own job functions and never a callback named in Redis."""

    def _refuse(self, why: str) -> ForeignJobRefused:
        log.error("refused job %s from queue %s: %s", self.id, _short(self.origin), why)
        return ForeignJobRefused(f"job refused: {why}")

    @property
    def func(self) -> Any:
        try:
            name = self.func_name
            instance = self.instance
        except DeserializationError as exc:
            cause = exc.__cause__ or exc
            raise self._refuse(f"its data is not plain data ({_short(str(cause))})") from None
        if instance is not None:
            raise self._refuse(f"it names an object instance for {_short(name)}")
        renamed = RENAMED_JOBS.get(name) if name else None
        if name not in JOB_FUNCTIONS and renamed not in JOB_FUNCTIONS:
            raise self._refuse(f"{_short(name)} is not one of the project's job functions")
        callbacks = [self._success_callback_name, self._failure_callback_name, self._stopped_callback_name]
        if any(callbacks):
            raise self._refuse(f"it names callbacks {_short([c for c in callbacks if c])}")
        return import_attribute(renamed) if renamed else super().func

    # RQ imports and calls these after the job (also after a refused one): never from Redis.
    @property
    def success_callback(self) -> Any:
        return self._no_callback(self._success_callback_name)

    @property
    def failure_callback(self) -> Any:
        return self._no_callback(self._failure_callback_name)

    @property
    def stopped_callback(self) -> Any:
        return self._no_callback(self._stopped_callback_name)

    def _no_callback(self, name: str | None) -> None:
        if name:
            log.error("refused callback %s of job %s: the project's jobs have no callbacks", _short(name), self.id)
        return None


def queue(name: str, connection: Redis) -> Queue:
    """One of the project's queues, reading and writing jobs safely."""
    return Queue(name, connection=connection, job_class=AllowlistJob, serializer=SafeSerializer)


def fetch_job(job_id: str, connection: Redis) -> Job:
    return AllowlistJob.fetch(job_id, connection=connection, serializer=SafeSerializer)


def still_queued(connection: Redis, jobs: Sequence[tuple[str, str]]) -> list[bool]:
    """For each (job id, queue name): whether the id is still in that queue's list. RQ's worker
    takes an id off the list before it marks the job started, so a worker stopped in between
    leaves a job whose status says `queued` although no queue holds it any more."""
    with connection.pipeline(transaction=False) as pipe:
        for job_id, name in jobs:
            pipe.lpos(f"{Queue.redis_queue_namespace_prefix}{name}", job_id)
        return [position is not None for position in pipe.execute()]


def fetch_jobs(job_ids: list[str], connection: Redis) -> list[Job | None]:
    return AllowlistJob.fetch_many(job_ids, connection=connection, serializer=SafeSerializer)
