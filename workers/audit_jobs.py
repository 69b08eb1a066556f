"""Audit checkpoint job (a thin wrapper around services.audit.checkpoints)."""

from __future__ import annotations

from typing import Any

from ca_service.services.audit import checkpoints as audit_checkpoints
from ca_service.services.background.jobs import job_context

# The scheduler runs the job this often; it signs only when events were written since the last
# checkpoint, so a checkpoint is never more than a minute behind (DESIGN: at least every 5 minutes).
CHECKPOINT_SECONDS = 60


def audit_checkpoint_job(**_: Any) -> dict[str, Any] | None:
    return audit_checkpoints.create(job_context(), only_if_advanced=True)
