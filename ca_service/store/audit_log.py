"""The audit_events table: the insert on every state change, and what sealing and verifying read."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from sqlalchemy import func, insert, select, text
from sqlalchemy.orm import Session

from ca_service.store.models import AuditEvent

_SEAL_LOCK_KEY = 0x6361_7564  # "caud": advisory lock id on PostgreSQL
_INSERT_EVENT = insert(AuditEvent)
EVENT_COLUMNS = (
    "occurred_at", "client_name", "acting_login_id", "action", "target_type", "target_id", "details", "request_id", "mac",
)  # fmt: skip


def insert_event(session: Session, values: dict[str, Any]) -> None:
    """A Core INSERT compiled once: no ORM bookkeeping, no per-call statement cache key."""
    session.connection().execute(_INSERT_EVENT, values)


def take_seal_lock(session: Session, *, wait: bool) -> bool:
    """The sealing lock for this transaction; False if another holds it and not `wait`."""
    if session.get_bind().dialect.name != "postgresql":
        return True  # SQLite write transactions are already serialised (BEGIN IMMEDIATE)
    if wait:
        session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _SEAL_LOCK_KEY})
        return True
    return bool(session.execute(text("SELECT pg_try_advisory_xact_lock(:k)"), {"k": _SEAL_LOCK_KEY}).scalar())


def chain_head(session: Session) -> tuple[int, str] | None:
    """(chain_index, hash) of the last sealed event."""
    last = session.execute(
        select(AuditEvent.chain_index, AuditEvent.hash)
        .where(AuditEvent.chain_index.is_not(None))
        .order_by(AuditEvent.chain_index.desc())
        .limit(1)
    ).first()
    return (int(last[0]), str(last[1])) if last is not None else None


def unsealed(session: Session, limit: int, after_id: int = 0) -> Sequence[AuditEvent]:
    return session.scalars(
        select(AuditEvent).where(AuditEvent.chain_index.is_(None), AuditEvent.id > after_id).order_by(AuditEvent.id).limit(limit)
    ).all()


def count_unsealed(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(AuditEvent).where(AuditEvent.chain_index.is_(None))) or 0


def sealed_in_order(session: Session) -> Iterator[AuditEvent]:
    return iter(
        session.scalars(
            select(AuditEvent)
            .where(AuditEvent.chain_index.is_not(None))
            .order_by(AuditEvent.chain_index)
            .execution_options(yield_per=2000)
        )
    )


def after_id(session: Session, after: int, limit: int) -> Sequence[AuditEvent]:
    return session.scalars(select(AuditEvent).where(AuditEvent.id > after).order_by(AuditEvent.id).limit(limit)).all()
