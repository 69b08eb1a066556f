"""The one definition of "valid at time t" for a client certificate: not revoked, and `t`
before its notAfter. A SQL predicate (for queries) and the same rule in Python (for a row already
read); everything that asks "is this certificate valid now?" uses one of these two.

A certificate's status at `t` is `revoked` (whenever it was revoked, even after expiry),
`expired` (t >= notAfter), else `active` (= valid)."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from sqlalchemy import ColumnElement, and_, false

from ca_service.store.models import Certificate

ACTIVE, REVOKED, EXPIRED = "active", "revoked", "expired"
STATUSES = (ACTIVE, REVOKED, EXPIRED)


class HasValidity(Protocol):
    @property
    def revoked_at(self) -> datetime | None: ...

    @property
    def not_after(self) -> datetime: ...


def status_at(revoked_at: datetime | None, not_after: datetime, now: datetime) -> str:
    if revoked_at is not None:
        return REVOKED
    return EXPIRED if now >= not_after else ACTIVE


def status_of(row: HasValidity, now: datetime) -> str:
    return status_at(row.revoked_at, row.not_after, now)


def is_valid(row: HasValidity, now: datetime) -> bool:
    return status_of(row, now) == ACTIVE


def valid_at(now: datetime) -> ColumnElement[bool]:
    """SQL: the certificate is valid at `now` (the Python rule above, as a WHERE clause)."""
    return status_is(ACTIVE, now)


def status_is(status: str, now: datetime) -> ColumnElement[bool]:
    if status == REVOKED:
        return Certificate.revoked_at.is_not(None)
    if status == ACTIVE:
        return and_(Certificate.revoked_at.is_(None), Certificate.not_after > now)
    if status == EXPIRED:
        return and_(Certificate.revoked_at.is_(None), Certificate.not_after <= now)
    return false()
