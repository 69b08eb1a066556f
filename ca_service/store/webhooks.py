"""Webhook events and their deliveries: written in the change's transaction, read by
the delivery job (the oldest pending delivery of a stream and URL, locked), the sweep, the CLI
and the console."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from ca_service.store.models import WebhookDelivery, WebhookEvent

PENDING, DELIVERED, FAILED = "pending", "delivered", "failed"


def add_event(
    session: Session,
    *,
    event_id: str,
    type_: str,
    stream: str,
    occurred_at: datetime,
    body: str,
    urls: tuple[str, ...],
    now: datetime,
) -> WebhookEvent:
    """The new event, flushed, and one pending delivery of it per URL, due at `now`."""
    event = WebhookEvent(event_id=event_id, type=type_, stream=stream, occurred_at=occurred_at, body=body)
    session.add(event)
    session.flush()  # its seq
    for url in urls:
        session.add(
            WebhookDelivery(
                event_seq=event.seq, stream=event.stream, url=url, status=PENDING, created_at=now, attempts=0, next_attempt_at=now
            )
        )
    return event


def oldest_pending(session: Session, stream: str, url: str) -> WebhookDelivery | None:
    """The head of a stream's queue for one URL, locked (FOR UPDATE on PostgreSQL; SQLite's
    BEGIN IMMEDIATE serialises writers). No filter on the lease or the retry time here: the
    head is the head, so a later event is never sent while an earlier one is in flight."""
    stmt = (
        select(WebhookDelivery)
        .where(WebhookDelivery.stream == stream, WebhookDelivery.url == url, WebhookDelivery.status == PENDING)
        .order_by(WebhookDelivery.event_seq)
        .limit(1)
    )
    if session.get_bind().dialect.name == "postgresql":
        stmt = stmt.with_for_update()
    return session.scalars(stmt).first()


def lock_delivery(session: Session, delivery_id: int) -> WebhookDelivery | None:
    stmt = select(WebhookDelivery).where(WebhookDelivery.id == delivery_id)
    if session.get_bind().dialect.name == "postgresql":
        stmt = stmt.with_for_update()
    return session.scalars(stmt).first()


def get_delivery(session: Session, delivery_id: int) -> WebhookDelivery | None:
    return session.get(WebhookDelivery, delivery_id)


def event(session: Session, seq: int) -> WebhookEvent:
    return session.get_one(WebhookEvent, seq)


def due_heads(session: Session, now: datetime, due_before: datetime, limit: int) -> list[tuple[str, str]]:
    """(stream, url) whose oldest pending delivery is due since `due_before` and not in flight:
    the sweep enqueues a job for each (after a lost job, a killed worker, a Redis restart)."""
    head = (
        select(WebhookDelivery.stream, WebhookDelivery.url, func.min(WebhookDelivery.event_seq).label("seq"))
        .where(WebhookDelivery.status == PENDING)
        .group_by(WebhookDelivery.stream, WebhookDelivery.url)
        .subquery()
    )
    stmt = (
        select(WebhookDelivery.stream, WebhookDelivery.url)
        .join(
            head,
            (head.c.stream == WebhookDelivery.stream)
            & (head.c.url == WebhookDelivery.url)
            & (head.c.seq == WebhookDelivery.event_seq),
        )
        .where(
            WebhookDelivery.status == PENDING,
            WebhookDelivery.next_attempt_at <= due_before,
            or_(WebhookDelivery.leased_until.is_(None), WebhookDelivery.leased_until < now),
        )
        .order_by(WebhookDelivery.event_seq)
        .limit(limit)
    )
    return [(str(s), str(u)) for s, u in session.execute(stmt).all()]


def oldest_pending_created(session: Session) -> datetime | None:
    """When the oldest undelivered event was recorded (the metrics' age gauge)."""
    return session.scalar(
        select(func.min(WebhookEvent.occurred_at))
        .join(WebhookDelivery, WebhookDelivery.event_seq == WebhookEvent.seq)
        .where(WebhookDelivery.status == PENDING)
    )


def listing(session: Session, *, status: str | None, limit: int) -> list[tuple[WebhookDelivery, WebhookEvent]]:
    stmt = select(WebhookDelivery, WebhookEvent).join(WebhookEvent, WebhookEvent.seq == WebhookDelivery.event_seq)
    if status is not None:
        stmt = stmt.where(WebhookDelivery.status == status)
    stmt = stmt.order_by(WebhookDelivery.id.desc()).limit(limit)
    return [(d, e) for d, e in session.execute(stmt).all()]


def counts(session: Session) -> dict[str, Any]:
    return {
        str(s): int(n) for s, n in session.execute(select(WebhookDelivery.status, func.count()).group_by(WebhookDelivery.status))
    }
