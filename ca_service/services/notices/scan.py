"""The 40-day expiry notices (R6): a daily scan creates one notice per certificate, the screen
after login shows the current ones, and each notice's email is sent once (services/notices/mailer.py)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from ca_service import metrics
from ca_service.context import Actor, ServiceContext
from ca_service.errors import Conflict, NotFound
from ca_service.outbox import records as outbox
from ca_service.services import events
from ca_service.services.audit.change import change
from ca_service.services.certificates.views import days_remaining
from ca_service.services.notices.texts import screen_messages
from ca_service.store import notices as store
from ca_service.store.db import Tx, reading
from ca_service.store.models import Notice

EXPIRING = "certificate_expiring"


@dataclass(frozen=True)
class ScanResult:
    as_of: datetime
    examined: int
    created: int
    emails_queued: int


def scan(
    ctx: ServiceContext, as_of: datetime | None = None, *, batch: int = 2000, progress: Callable[[int], None] | None = None
) -> ScanResult:
    """Create a notice for every valid certificate whose notAfter falls within CA_NOTICE_DAYS of
    `as_of`. Walks the not_after index in keyset pages (never all rows in memory); one transaction
    per page; the UNIQUE (serial, kind) constraint makes a rerun create nothing."""
    as_of = as_of or ctx.clock.now()
    horizon = as_of + timedelta(days=ctx.settings.notice_days)
    cursor: tuple[datetime, int] = (as_of, 2**62)  # keyset (not_after, id); starts after as_of
    examined = created = queued = 0
    while True:
        with change(ctx, None) as uow:  # a page's emails and events are relayed once it commits
            session = uow.session
            rows = store.expiring_page(session, as_of, horizon, cursor, batch)
            if not rows:
                break
            cursor = (rows[-1].not_after, rows[-1].id)
            examined += len(rows)
            values = [
                {
                    "kind": EXPIRING, "serial": r.serial, "login_id": r.login_id, "not_after": r.not_after,
                    "created_at": as_of, "email_status": "pending" if r.email else "no_email", "email_attempts": 0,
                }
                for r in rows
            ]  # fmt: skip
            new = store.insert_new(session, values)
            created += len(new)
            emails = [notice_id for notice_id, status, _serial in new if status == "pending"]
            if events.enabled(ctx):
                by_serial = {r.serial: r for r in rows}
                for _id, _status, serial in new:
                    r = by_serial[serial]
                    events.record(
                        uow,
                        events.CERTIFICATE_EXPIRING,
                        login_id=r.login_id,
                        data={
                            "login_id": r.login_id,
                            "serial": serial,
                            "not_after": r.not_after,
                            "days_remaining": days_remaining(r.not_after, as_of, ctx.settings.tz),
                        },
                    )
            uow.outbox_many(outbox.NOTICE_EMAIL, [{"notice_id": n} for n in emails])
            queued += len(emails)
        if progress is not None:
            progress(len(rows))
        if len(rows) < batch:
            break
    metrics.NOTICES_CREATED.inc(created)
    return ScanResult(as_of, examined, created, queued)


def notice_dict(
    ctx: ServiceContext, kind: str, serial: str, not_after: datetime, created_at: datetime, now: datetime
) -> dict[str, Any]:
    """A notice as the API shows it after login, with its Japanese and English screen texts."""
    days = days_remaining(not_after, now, ctx.settings.tz)
    ja, en = screen_messages(not_after, days, ctx.settings.tz)
    return {
        "kind": kind, "serial": serial, "not_after": not_after, "days_remaining": days,
        "message_ja": ja, "message_en": en, "created_at": created_at,
    }  # fmt: skip


def current_notices(ctx: ServiceContext, login_id: str, *, session: Tx | None = None) -> list[dict[str, Any]]:
    """The notices to show after login: only for certificates still valid (not renewed, revoked or expired)."""
    now = ctx.clock.now()
    if session is not None:
        rows = store.current_for_login(session, login_id, now)
    else:
        with reading(ctx.sessions) as own:
            rows = store.current_for_login(own, login_id, now)
    return [notice_dict(ctx, r.kind, r.serial, r.not_after, r.created_at, now) for r in rows]


def failed_notices(ctx: ServiceContext, limit: int = 200) -> list[Notice]:
    with reading(ctx.sessions) as session:
        return store.failed(session, limit)


def retry_email(ctx: ServiceContext, actor: Actor, notice_id: int) -> None:
    """Send a notice email that failed after every retry once more (the help desk fixed the
    address or the mail server): back to pending, queued through the outbox, audited."""
    with change(ctx, actor) as uow:
        notice = store.lock(uow.session, notice_id)
        if notice is None:
            raise NotFound(f"no notice {notice_id}", code="notice-not-found")
        if notice.email_status != "failed":
            raise Conflict(f"notice {notice_id}'s email is {notice.email_status}, not failed", code="notice-not-failed")
        notice.email_status, notice.email_attempts = "pending", 0
        uow.outbox(outbox.NOTICE_EMAIL, notice_id=notice_id)
        uow.audit("notice.email_retried", target_type="notice", target_id=str(notice_id), login_id=notice.login_id)
