"""The project's RQ queues, and one service context per worker process."""

from __future__ import annotations

from ca_service.constants import QUEUE_NAMES
from ca_service.context import ServiceContext, process_context

QUEUES = QUEUE_NAMES


def context() -> ServiceContext:
    """Built once per process (ca_service.context.process_context): a forked work horse drops the
    parent's pooled connections before first use."""
    return process_context(pool_size=2)
