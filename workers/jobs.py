"""Some RQ jobs under the names jobs queued by name know them by ("workers.jobs.<name>"). Every
job function lives in ca_service/services/background/jobs.py, where the outbox relay and the
scheduler reach them by function object; this module only keeps these names importable."""

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
