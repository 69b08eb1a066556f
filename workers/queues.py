"""The project's RQ queues (a job's context: ca_service.services.background.jobs.job_context)."""

from __future__ import annotations

from ca_service.constants import QUEUE_NAMES

QUEUES = QUEUE_NAMES
