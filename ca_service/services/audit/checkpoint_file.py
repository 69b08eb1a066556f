"""Every signed audit checkpoint, also appended to a file a database writer cannot reach
(CA_DATA_DIR/audit/checkpoints.log, or CA_AUDIT_CHECKPOINT_FILE: put it on storage the database
administrators do not administer, or ship it off the host). `ca-service audit verify` checks the
chain against the newest checkpoint in it by default, so deleting the tail of the chain together
with its checkpoints in the database, or rewriting and re-hashing events and deleting the later
checkpoints, fails verification without `--checkpoint FILE`.

One JSON object per line (as GET /v1/audit-checkpoints serves one), appended with O_APPEND and
fsync'd: concurrent writers (the scheduler's job, `ca-service audit checkpoint`) never interleave
a line. A line that is not a checkpoint (a torn write after a crash) is skipped.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

from ca_service.context import ServiceContext
from ca_service.errors import Unavailable

log = logging.getLogger("ca_service.audit.checkpoint")
FIELDS = ("seq", "event_count", "head_hash", "signed_at", "key_id", "signature")


def path_of(ctx: ServiceContext) -> Path:
    return ctx.settings.audit_checkpoint_path


def append(ctx: ServiceContext, checkpoint: dict[str, Any]) -> None:
    path = path_of(ctx)
    line = (json.dumps({k: checkpoint[k] for k in FIELDS}, sort_keys=True, separators=(",", ":")) + "\n").encode()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
        try:
            os.write(fd, line)
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError as exc:
        log.error("audit checkpoint %s not appended to %s (%s)", checkpoint["seq"], path, exc.strerror)
        raise Unavailable(
            f"the audit checkpoint file {path} cannot be written ({exc.strerror})", code="audit-sink-unavailable"
        ) from None


def newest(ctx: ServiceContext) -> dict[str, Any] | None:
    """The checkpoint with the highest seq in the file; None if there is no file or none in it."""
    try:
        text = path_of(ctx).read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise Unavailable(f"the audit checkpoint file cannot be read ({exc.strerror})", code="audit-sink-unavailable") from None
    best: dict[str, Any] | None = None
    for line in text.splitlines():
        try:
            value = json.loads(line)
        except ValueError:
            continue
        if not isinstance(value, dict) or any(f not in value for f in FIELDS) or not isinstance(value["seq"], int):
            continue
        if best is None or value["seq"] > best["seq"]:
            best = value
    return best
