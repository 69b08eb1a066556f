"""Reads that find work a lost queue may have dropped (ca_service/services/background/redispatch.py)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from ca_service.store.models import Notice


def notices_awaiting_email(session: Session, *, created_before: datetime, limit: int) -> list[int]:
    """Ids of notices whose email is neither sent nor given up on, oldest first."""
    stmt = (
        select(Notice.id)
        .where(Notice.email_status == "pending", Notice.created_at < created_before)
        .order_by(Notice.id)
        .limit(limit)
    )
    return list(session.scalars(stmt))
