"""Lifecycle events to the front end (DESIGN §4d), the `events` capability.

- recording.py  `record(uow, type, login_id=..., data=...)`: the event and one delivery
                row per receiver URL, in the caller's unit of work (never sent for a rollback,
                never lost after a commit), plus an outbox entry per URL that wakes the worker.
- signing.py    Standard Webhooks headers (webhook-id, webhook-timestamp, webhook-signature).
- sender.py     one HTTP POST: connect and total deadlines, no redirects, at most 4 KB read.
- delivery.py   the worker's side: oldest pending delivery of a (login ID, URL) first, retries
                with backoff, give up after CA_WEBHOOK_GIVE_UP_HOURS; the sweep's recovery.
- admin.py      listing and retrying deliveries (CLI, console), the age gauge.
"""

from ca_service.services.events.recording import (
    CERTIFICATE_EXPIRING,
    CERTIFICATE_ISSUED,
    CERTIFICATE_RENEWED,
    CERTIFICATE_REVOKED,
    ENROLMENT_CODE_USED,
    EVENT_TYPES,
    ORGANIZATION_LOGIN_METHOD_CHANGED,
    USER_ROLE_CHANGED,
    enabled,
    record,
    record_in,
)

__all__ = [
    "CERTIFICATE_EXPIRING",
    "CERTIFICATE_ISSUED",
    "CERTIFICATE_RENEWED",
    "CERTIFICATE_REVOKED",
    "ENROLMENT_CODE_USED",
    "EVENT_TYPES",
    "ORGANIZATION_LOGIN_METHOD_CHANGED",
    "USER_ROLE_CHANGED",
    "enabled",
    "record",
    "record_in",
]
