"""Expiry notices: the scan's keyset pages, the idempotent insert, the reads after login."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Row, Table, or_, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from ca_service.store.models import Certificate, Notice, User
from ca_service.store.validity import valid_at

NOTICES: Table = Notice.__table__  # type: ignore[assignment]


def expiring_page(
    session: Session, as_of: datetime, horizon: datetime, cursor: tuple[datetime, int], limit: int
) -> Sequence[Row[Any]]:
    """(id, serial, login_id, not_after, email) of certificates valid at `as_of` whose notAfter
    is at most `horizon`, after the keyset `cursor` = (not_after, id), in that order."""
    return session.execute(
        select(Certificate.id, Certificate.serial, Certificate.login_id, Certificate.not_after, User.email)
        .join(User, User.login_id == Certificate.login_id)
        .where(
            valid_at(as_of),
            Certificate.not_after <= horizon,
            # keyset on (not_after, id); the first term keeps it an index range scan
            Certificate.not_after >= cursor[0],
            or_(Certificate.not_after > cursor[0], Certificate.id > cursor[1]),
        )
        .order_by(Certificate.not_after, Certificate.id)
        .limit(limit)
    ).all()


def insert_new(session: Session, values: list[dict[str, Any]]) -> list[tuple[int, str, str]]:
    """Insert the notices not there yet (UNIQUE (serial, kind)); (id, email_status, serial) of the new ones.
    executemany with RETURNING ("insertmanyvalues"): one cached statement for every page."""
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    stmt = insert(NOTICES).on_conflict_do_nothing(index_elements=["serial", "kind"])
    returning = stmt.returning(NOTICES.c.id, NOTICES.c.email_status, NOTICES.c.serial)
    return [(int(i), str(s), str(serial)) for i, s, serial in session.execute(returning, values).all()]


def current_for_login(session: Session, login_id: str, now: datetime) -> Sequence[Row[Any]]:
    """(kind, serial, not_after, created_at) of the login ID's notices whose certificate is valid."""
    return session.execute(
        select(Notice.kind, Notice.serial, Notice.not_after, Notice.created_at)
        .join(Certificate, Certificate.serial == Notice.serial)
        .where(Notice.login_id == login_id, valid_at(now))
        .order_by(Notice.not_after)
    ).all()


def failed(session: Session, limit: int) -> list[Notice]:
    return list(session.scalars(select(Notice).where(Notice.email_status == "failed").order_by(Notice.id).limit(limit)))


def lock(session: Session, notice_id: int) -> Notice | None:
    return session.scalars(select(Notice).where(Notice.id == notice_id).with_for_update()).first()
