"""Recording an event in the caller's unit of work.

For the engineer wiring `enrolment_code.used` (or any other change):

    from ca_service.services import events
    with change(ctx, actor) as uow:
        ...  # the change itself
        events.record(uow, events.ENROLMENT_CODE_USED, login_id=login_id, data={"login_id": login_id, ...})

Its outbox entries wake the webhook worker right after the commit (else the sweep does, within
~20 s). `record_in(session, ctx, ...)` records in a bare transaction (tests): no wake-up.

`data` must be plain JSON and must never carry a secret: a key named like a code, token,
password, secret or key is refused (ValueError) before anything is written.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any

from ca_service.context import ServiceContext
from ca_service.outbox import records as outbox
from ca_service.services.audit.change import Change
from ca_service.store import webhooks as store
from ca_service.store.db import Tx
from ca_service.timefmt import rfc3339

CERTIFICATE_ISSUED = "certificate.issued"
CERTIFICATE_RENEWED = "certificate.renewed"
CERTIFICATE_REVOKED = "certificate.revoked"
CERTIFICATE_EXPIRING = "certificate.expiring"
ENROLMENT_CODE_USED = "enrolment_code.used"
ORGANIZATION_LOGIN_METHOD_CHANGED = "organization.login_method_changed"
USER_ROLE_CHANGED = "user.role_changed"
EVENT_TYPES = (
    CERTIFICATE_ISSUED,
    CERTIFICATE_RENEWED,
    CERTIFICATE_REVOKED,
    CERTIFICATE_EXPIRING,
    ENROLMENT_CODE_USED,
    ORGANIZATION_LOGIN_METHOD_CHANGED,
    USER_ROLE_CHANGED,
)
WEBHOOK_DELIVER = "webhook.deliver"  # the outbox entry that wakes the delivery job of a (stream, URL)

# No event body carries a secret (DESIGN §4d): refused by key name, at any depth.
_SECRET_WORDS = ("code", "token", "password", "passphrase", "secret", "key", "pem", "csr", "otp")


def enabled(ctx: ServiceContext) -> bool:
    """Events are recorded only while at least one receiver is configured (CA_WEBHOOK_URLS)."""
    return ctx.settings.webhooks.enabled


def _check_plain(data: Any, path: str = "data") -> None:
    if isinstance(data, dict):
        for key, value in data.items():
            lowered = str(key).lower()
            if any(word in lowered.split("_") or lowered == word for word in _SECRET_WORDS):
                raise ValueError(f"{path}.{key}: an event never carries a code, token, key or secret")
            _check_plain(value, f"{path}.{key}")
    elif isinstance(data, list):
        for i, value in enumerate(data):
            _check_plain(value, f"{path}[{i}]")


def _plain(value: Any) -> Any:
    return rfc3339(value) if isinstance(value, datetime) else value


def record(
    uow: Change, type_: str, *, login_id: str | None = None, org_id: str | None = None, data: dict[str, Any]
) -> str | None:
    """Record an event `{id, type, occurred_at, data}` for every configured receiver, in the
    change's transaction. Events of one login ID (or, without one, of one organisation) reach
    each receiver in the order they were recorded. Returns the event id (None: no receiver)."""

    def wake(stream: str, url: str) -> None:
        uow.outbox(WEBHOOK_DELIVER, for_request=False, stream=stream, url=url)

    return _record(uow.session, uow.ctx, wake, type_, login_id, org_id, data)


def record_in(
    session: Tx, ctx: ServiceContext, type_: str, *, login_id: str | None = None, org_id: str | None = None, data: dict[str, Any]
) -> str | None:
    """`record` in a bare transaction: the entries wait for the relay's sweep."""

    def wake(stream: str, url: str) -> None:
        outbox.add(session, ctx, None, WEBHOOK_DELIVER, stream=stream, url=url)

    return _record(session, ctx, wake, type_, login_id, org_id, data)


def _record(
    session: Tx,
    ctx: ServiceContext,
    wake: Callable[[str, str], None],
    type_: str,
    login_id: str | None,
    org_id: str | None,
    data: dict[str, Any],
) -> str | None:
    if type_ not in EVENT_TYPES:
        raise ValueError(f"unknown event type {type_!r}")
    if login_id is None and org_id is None:
        raise ValueError("an event belongs to a login ID or an organisation")
    _check_plain(data)  # even with no receiver: a non-plain value fails every test, not only the webhook ones
    settings = ctx.settings.webhooks
    if not settings.enabled:
        return None
    now = ctx.clock.now()
    event_id = f"evt_{uuid.uuid4().hex}"
    stream = login_id if login_id is not None else f"org:{org_id}"
    body = json.dumps(
        {"id": event_id, "type": type_, "occurred_at": rfc3339(now), "data": {k: _plain(v) for k, v in data.items()}},
        separators=(",", ":"),
        sort_keys=True,
        ensure_ascii=False,
    )
    store.add_event(
        session, event_id=event_id, type_=type_, stream=stream, occurred_at=now, body=body, urls=settings.urls, now=now
    )
    for url in settings.urls:
        wake(stream, url)
    return event_id
