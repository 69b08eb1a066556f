"""The periodic jobs, scheduled with RQ's own CronScheduler."""

from __future__ import annotations

import logging
import os
import secrets
import socket
import time

from ca_service.constants import QueueName
from ca_service.services.background import jobs
from workers.leader import LeaderCronScheduler

log = logging.getLogger("ca_service.scheduler")
SWEEP_SECONDS = 10


def build_scheduler() -> LeaderCronScheduler:
    ctx = jobs.job_context()
    s = ctx.settings
    # The cron strings are in CA_TIMEZONE (RQ evaluates them in the process's local time).
    os.environ["TZ"] = s.timezone
    time.tzset()
    # unique per start: in a container the pid is always 1, so by pid every scheduler had one
    # name and one entry in RQ's registry: a second (mistaken) scheduler's heartbeat would hide a
    # hung one from `ca-service healthcheck` and the ca_schedulers gauge would count them as one
    name = f"ca-service-scheduler-{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"
    # Any number may run: one holds the lease and enqueues, the others stand by (workers/leader.py).
    scheduler = LeaderCronScheduler(ctx.redis(), name=name, lease_seconds=s.scheduler_lease_seconds)
    scheduler.register(jobs.sweep_job, QueueName.DEFAULT, interval=SWEEP_SECONDS, name="outbox-sweep")
    scheduler.register(jobs.republish_crl_job, QueueName.CRL, interval=s.crl_republish_minutes * 60, name="crl-republish")
    scheduler.register(jobs.expiry_scan_job, QueueName.DEFAULT, cron=s.expiry_scan_cron, name="expiry-scan")
    scheduler.register(jobs.rotate_ocsp_responders_job, QueueName.DEFAULT, interval=6 * 3600, name="ocsp-responder-rotation")
    scheduler.register(jobs.audit_checkpoint_job, QueueName.DEFAULT, interval=jobs.CHECKPOINT_SECONDS, name="audit-ckpt")
    return scheduler
