"""One JSON object per log line on stdout, with the request context (request id, API client,
acting login ID, serial) and a redaction filter as a last line of defence: no PEM block, bearer
token or password ever reaches the output, whatever a caller logs."""

from __future__ import annotations

import contextvars
import json
import logging
import re
import sys
from datetime import UTC, datetime
from typing import Any

# Set per request by the API and per job by the workers.
log_context: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar("ca_log_context", default=None)

_REDACTIONS = (
    (re.compile(r"-----BEGIN [A-Z0-9 ]+-----.*?(-----END [A-Z0-9 ]+-----|$)", re.S), "[redacted PEM]"),
    (re.compile(r"cas_[A-Za-z0-9_\-]{20,}"), "[redacted token]"),
    (re.compile(r"(?i)(authorization|password|passphrase)(['\"]?\s*[:=]\s*)(['\"]?)[^\s'\",}]+"), r"\1\2\3[redacted]"),
)


def bind(**fields: Any) -> None:
    """Add fields (request_id, api_client, acting_login_id, serial, job_id) to the current context."""
    current = log_context.get()
    if current is None:
        current = {}
        log_context.set(current)
    current.update({k: v for k, v in fields.items() if v is not None})


_FIELDS = ("request_id", "api_client", "acting_login_id", "serial", "job_id")


def redact(text: str) -> str:
    for pattern, replacement in _REDACTIONS:
        text = pattern.sub(replacement, text)
    return text


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "timestamp": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        context = log_context.get() or {}
        for key in _FIELDS:
            value = getattr(record, key, None) or context.get(key)
            if value is not None:
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return redact(json.dumps(entry, ensure_ascii=False, default=str))


# every 10 s: RQ's INFO lines about it are noise. RQ names a job by where its function is defined
# (the scheduler enqueues ca_service.services.background.jobs.sweep_job); workers.jobs re-exports the old name.
ROUTINE_JOBS = frozenset(
    {
        "ca_service.services.background.jobs.sweep_job",
        "workers.jobs.sweep_job",
        "ca_service.services.tasks.sweep_job",  # regroup:keep (queued before the regrouping)
    }
)


class QuietRoutine(logging.Filter):
    """Drops RQ's INFO lines (enqueued, started, OK, result kept) about the routine jobs, and
    Alembic's INFO chatter (plugin set-up, "Context impl" on every readiness probe). Warnings
    and errors about them always pass."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno > logging.INFO:
            return True
        if record.name == "alembic.runtime.plugins":
            return False
        if record.name == "alembic.runtime.migration":
            return record.getMessage().startswith(("Running upgrade", "Running downgrade"))
        if record.name.startswith("rq."):
            context = log_context.get() or {}
            return not context.get("routine") and not any(job.rsplit(".", 1)[-1] in record.getMessage() for job in ROUTINE_JOBS)
        return True


def configure(level: str = "INFO") -> None:
    """Route every logger (ours, gunicorn's, RQ's) to one JSON handler on stdout."""
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(QuietRoutine())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for name in ("gunicorn.error", "gunicorn.access", "rq.worker", "rq.cron", "rq.scheduler", "rq.queue"):
        lg = logging.getLogger(name)
        lg.handlers[:] = []
        lg.propagate = True


GUNICORN_LOGCONFIG: dict[str, Any] = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"json": {"()": "config.logging.JsonFormatter"}},
    "filters": {"quiet": {"()": "config.logging.QuietRoutine"}},
    "handlers": {
        "stdout": {"class": "logging.StreamHandler", "stream": "ext://sys.stdout", "formatter": "json", "filters": ["quiet"]}
    },
    "root": {"handlers": ["stdout"], "level": "INFO"},
    "loggers": {
        "gunicorn.error": {"handlers": ["stdout"], "level": "INFO", "propagate": False},
        "gunicorn.access": {"handlers": [], "level": "WARNING", "propagate": False},
    },
}
