"""CA rows: root, issuing and OCSP responder certificates this service holds keys for."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from ca_service.constants import CaKind
from ca_service.store.models import CertificateAuthority

CA = CertificateAuthority


def active_ca(session: Session, kind: str) -> CA | None:
    """The newest active CA of `kind` (root | issuing)."""
    return session.scalars(select(CA).where(CA.kind == kind, CA.active.is_(True)).order_by(CA.id.desc()).limit(1)).first()


def get_ca(session: Session, ca_id: int) -> CA | None:
    return session.get(CA, ca_id)


def lock_ca(session: Session, ca_id: int) -> CA | None:
    """The CA row locked until commit, re-read (a CRL publication and the revocations it counts
    serialise on it)."""
    return session.get(CA, ca_id, with_for_update=True, populate_existing=True)


def by_name(session: Session, name: str) -> CA | None:
    return session.scalars(select(CA).where(CA.name == name)).first()


def count_of_kind(session: Session, kind: str) -> int:
    return session.scalar(select(func.count()).select_from(CA).where(CA.kind == kind)) or 0


@dataclass(frozen=True)
class NewAuthority:
    """A CA certificate the service just made (its key under `key_ref`), as it is stored."""

    name: str
    kind: str
    parent_id: int | None
    serial: str
    subject: str
    ski: str
    key_ref: str
    key_algorithm: str
    not_before: datetime
    not_after: datetime
    der: bytes
    created_at: datetime


def insert_ca(session: Session, new: NewAuthority) -> CA:
    """The new CA, active; flushed (the caller reads its id)."""
    row = CA(active=True, **{f.name: getattr(new, f.name) for f in fields(new)})
    session.add(row)
    session.flush()
    return row


def active_cas(session: Session) -> Sequence[CA]:
    return session.scalars(select(CA).where(CA.active.is_(True))).all()


def issuing_certificates(session: Session) -> list[tuple[int, bytes]]:
    """(id, DER) of every issuing CA held, older ones after a rollover too."""
    rows = session.execute(select(CA.id, CA.der).where(CA.kind == CaKind.ISSUING)).all()
    return [(row.id, row.der) for row in rows]


def ski_of(session: Session, ca_id: int) -> str | None:
    return session.scalar(select(CA.ski).where(CA.id == ca_id))


def revoked_children(session: Session, parent_id: int) -> Sequence[CA]:
    return session.scalars(select(CA).where(CA.parent_id == parent_id, CA.revoked_at.is_not(None))).all()


def issuing_ids_valid_after(session: Session, at: datetime, *, retired_only: bool = False) -> list[int]:
    """Ids of the issuing CAs whose certificate is still valid at `at` (only the inactive ones,
    retired by a rollover, with `retired_only`), oldest first."""
    stmt = select(CA.id).where(CA.kind == CaKind.ISSUING, CA.not_after > at)
    if retired_only:
        stmt = stmt.where(CA.active.is_(False))
    return list(session.scalars(stmt.order_by(CA.id)))


def newest_responder(session: Session, issuer_id: int, now: datetime) -> CA | None:
    """The OCSP responder of this issuer that is valid now and lasts longest."""
    return session.scalars(
        select(CA)
        .where(CA.kind == CaKind.OCSP, CA.parent_id == issuer_id, CA.not_before <= now, CA.not_after > now)
        .order_by(CA.not_after.desc(), CA.id.desc())
        .limit(1)
    ).first()


def lock_for_rotation(session: Session, issuer_id: int) -> None:
    """Serialise concurrent responder rotations for this issuer (SQLite: BEGIN IMMEDIATE does)."""
    session.execute(select(CA.id).where(CA.id == issuer_id).with_for_update())


def retire_responders(session: Session, issuer_id: int, keep_id: int) -> None:
    session.execute(
        update(CA)
        .where(CA.kind == CaKind.OCSP, CA.parent_id == issuer_id, CA.id != keep_id, CA.active.is_(True))
        .values(active=False)
    )
