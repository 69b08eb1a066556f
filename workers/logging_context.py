"""The RQ worker class of `ca-service worker`: every log line written while a job runs (by RQ,
by the job, by the services it calls; in the worker and in its forked work horse) carries the
job id and the request id of the API request that caused the job (the outbox relay keeps it in
the job's meta)."""

from __future__ import annotations

from typing import Any

from rq import Queue, Worker
from rq.job import Job

from config.logging import ROUTINE_JOBS, log_context


class ContextWorker(Worker):
    def execute_job(self, job: Job, queue: Queue) -> Any:
        # The work horse is forked inside execute_job: it inherits this context.
        # "routine": RQ's INFO lines about this job are dropped (config.logging.QuietRoutine)
        routine = job.func_name in ROUTINE_JOBS
        token = log_context.set({"job_id": job.id, "request_id": job.meta.get("request_id"), "routine": routine})
        try:
            return super().execute_job(job, queue)
        finally:
            log_context.reset(token)
