"""Published CRLs: every one kept, numbers strictly increasing per issuer (UNIQUE)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session, defer

from ca_service.store.crl_entries import revoked_entries as revoked_entries
from ca_service.store.models import Certificate, Crl


def latest(session: Session, issuer_id: int) -> Crl | None:
    """The CA's newest CRL row; its DER (50 MB at 1M entries) is loaded only when read."""
    return session.scalars(
        select(Crl).where(Crl.issuer_id == issuer_id).order_by(Crl.crl_number.desc()).limit(1).options(defer(Crl.der))
    ).first()


def next_crl_number(latest_crl: Crl | None) -> int:
    return latest_crl.crl_number + 1 if latest_crl is not None else 1


def by_number(session: Session, issuer_id: int, crl_number: int) -> Crl | None:
    return session.scalars(select(Crl).where(Crl.issuer_id == issuer_id, Crl.crl_number == crl_number)).first()


def insert_crl(
    session: Session,
    *,
    issuer_id: int,
    crl_number: int,
    this_update: datetime,
    next_update: datetime,
    entries: int,
    revocation_count: int,
    der: bytes,
    created_at: datetime,
) -> Crl:
    """The new CRL row, added to the transaction; INSERTed when it commits."""
    row = Crl(
        issuer_id=issuer_id, crl_number=crl_number, this_update=this_update, next_update=next_update, entries=entries,
        revocation_count=revocation_count, der=der, created_at=created_at,
    )  # fmt: skip
    session.add(row)
    return row


def oldest_revocation_after(session: Session, issuer_id: int, after: datetime) -> datetime | None:
    """The earliest revocation time of the CA's certificates revoked after `after` (index
    ix_certificates_revoked: a range read)."""
    return session.scalar(
        select(func.min(Certificate.revoked_at)).where(
            Certificate.issuer_id == issuer_id, Certificate.revoked_at.is_not(None), Certificate.revoked_at > after
        )
    )
