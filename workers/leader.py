"""One active scheduler among several: RQ's CronScheduler behind a Redis lease.

RQ 3's CronScheduler has no lock of its own: two `ca-service scheduler` processes would each
enqueue every periodic job. So each process waits for a lease (redis-py's `Lock`: SET NX PX and
compare-and-set renewal, the library's primitives), and only the holder runs the CronScheduler
loop. The holder renews the lease on every loop iteration (at most `lease / 3` apart); if it dies
(SIGKILL, host lost) the lease expires and a standby takes over within `lease` seconds. A clean
stop (SIGTERM) releases the lease at once. A holder that cannot renew (Redis restarted empty, the
lease expired while it was stalled) raises `LockNotOwnedError`, a RedisError, which the CLI loop
treats like any Redis outage: it goes back to waiting for the lease.

A new holder does not start its schedule from zero: each periodic job resumes from its latest
enqueue recorded in RQ's own cron job history, so a daily scan that fell due while no process held
the lease is enqueued at once, and one the previous holder already enqueued is not enqueued again.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from redis import Redis
from redis.exceptions import LockNotOwnedError
from redis.lock import Lock
from rq.cron import CronJob, CronScheduler
from rq.exceptions import SchedulerNotFound

log = logging.getLogger("ca_service.scheduler")
LEASE_KEY = "ca-service:scheduler:lease"
POLL_SECONDS = 1.0  # how often a standby tries to take the lease


class LeaderCronScheduler(CronScheduler):
    def __init__(self, connection: Redis, *, name: str, lease_seconds: int, **kwargs: Any) -> None:
        super().__init__(connection=connection, name=name, **kwargs)
        self.lease_seconds = lease_seconds
        self.lease: Lock = connection.lock(LEASE_KEY, timeout=lease_seconds, sleep=POLL_SECONDS)

    def start(self) -> None:
        log.info("scheduler %s: standby, waiting for the lease", self.name)
        self.lease.acquire(blocking=True)  # SIGTERM here: the CLI's handler exits cleanly
        log.info("scheduler %s: holds the lease, running the periodic jobs", self.name)
        self.resume_from_history()
        super().start()

    def resume_from_history(self) -> None:
        """Each job's latest enqueue time, from RQ's cron job history (kept in Redis)."""
        for job in self.get_jobs():
            latest: list[tuple[bytes, float]] = self.connection.zrevrange(job.job_history_key, 0, 0, withscores=True)  # type: ignore[assignment]
            if latest:
                job.set_enqueue_time(datetime.fromtimestamp(float(latest[0][1]), UTC))

    def enqueue_jobs(self) -> list[CronJob]:
        # Renew first: a holder that stalled past its lease (another took over) enqueues nothing.
        if not self.lease.reacquire():  # raises LockNotOwnedError when the lease is someone else's
            raise LockNotOwnedError("scheduler lease lost")
        return super().enqueue_jobs()

    def calculate_sleep_interval(self) -> float:
        return min(super().calculate_sleep_interval(), self.lease_seconds / 3)

    def register_death(self, pipeline: Any = None) -> None:
        try:
            super().register_death(pipeline)
        except SchedulerNotFound:  # Redis restarted empty: there is no registration to remove
            pass
        try:
            self.lease.release()  # a clean stop hands over at once, not after the lease runs out
        except LockNotOwnedError:
            pass
