"""The RQ worker class of `ca-service worker`: every log line written while a job runs (by RQ,
by the job, by the services it calls; in the worker and in its forked work horse) carries the
job id and the request id of the API request that caused the job (the outbox relay keeps it in
the job's meta)."""

from __future__ import annotations

from types import FrameType
from typing import Any

from redis.exceptions import RedisError
from rq import Queue, Worker
from rq.exceptions import DeserializationError, StopRequested
from rq.job import Job

from ca_service.queueing import AllowlistJob, SafeSerializer
from config.logging import ROUTINE_JOBS, log_context


class ContextWorker(Worker):
    """Also the worker's safety (ca_service/queueing.py): it loads jobs with the plain-data-only
    serializer and runs them as AllowlistJob, whatever the caller passes."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs["job_class"] = AllowlistJob
        kwargs["serializer"] = SafeSerializer
        super().__init__(*args, **kwargs)

    def execute_job(self, job: Job, queue: Queue) -> Any:
        # The work horse is forked inside execute_job: it inherits this context.
        # "routine": RQ's INFO lines about this job are dropped (config.logging.QuietRoutine)
        try:
            routine = job.func_name in ROUTINE_JOBS
        except DeserializationError:  # not plain data (a pickle gadget): AllowlistJob refuses it below
            routine = False
        token = log_context.set({"job_id": job.id, "request_id": job.meta.get("request_id"), "routine": routine})
        try:
            return super().execute_job(job, queue)
        finally:
            log_context.reset(token)

    def request_stop(self, signum: int, frame: FrameType | None) -> None:
        """SIGTERM/SIGINT. RQ's handler reads the worker's state from Redis: with Redis down it
        raised ConnectionError, which RQ's own reconnect loop swallowed: the signal was lost and
        the worker waited for Redis forever (SIGKILL after compose's 30 s). Without Redis: finish
        the running job (if any), else stop now."""
        try:
            super().request_stop(signum, frame)
        except RedisError:
            self._stop_requested = True
            if not self.horse_pid:
                raise StopRequested() from None

    @property
    def stop_requested(self) -> bool:
        """A stop signal arrived (work() may still end in a RedisError, from its teardown)."""
        return bool(self._stop_requested or self._shutdown_requested_date)
