"""The outbox table: entries written in the caller's transaction, read back by the relay."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from ca_service.store.models import OutboxEntry


def add(session: Session, entry: OutboxEntry) -> OutboxEntry:
    session.add(entry)
    return entry


def add_many(session: Session, rows: list[dict[str, Any]]) -> None:
    """Many entries in one INSERT (the expiry scan queues thousands of emails)."""
    session.execute(insert(OutboxEntry), rows)


def pending(session: Session, limit: int) -> Iterator[OutboxEntry]:
    """Undispatched entries, oldest first; on PostgreSQL locked, skipping those another relay holds."""
    stmt = select(OutboxEntry).where(OutboxEntry.dispatched_at.is_(None)).order_by(OutboxEntry.id).limit(limit)
    if session.get_bind().dialect.name == "postgresql":
        stmt = stmt.with_for_update(skip_locked=True)
    return iter(session.scalars(stmt))
