"""The RQ jobs, under the names scheduled and queued jobs know them by ("workers.jobs.<name>").
They live in ca_service/services/background/jobs.py, where the outbox relay and the API reach them by
function object without importing the workers."""

from __future__ import annotations

from ca_service.services.background.jobs import (
    MIN_INTERVAL_SECONDS,
    SETTLE_SECONDS,
    expiry_scan_job,
    publish_crl_job,
    republish_crl_job,
    send_notice_email_job,
    sweep_job,
)

__all__ = [
    "MIN_INTERVAL_SECONDS",
    "SETTLE_SECONDS",
    "expiry_scan_job",
    "publish_crl_job",
    "republish_crl_job",
    "send_notice_email_job",
    "sweep_job",
]
