"""Reads and writes of the root CA's CRL (signed at a ceremony, served as stored)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from ca_service.store.models import CertificateAuthority, Crl


def lock_ca(session: Session, ca_id: int) -> CertificateAuthority | None:
    """The CA's row, locked until the transaction ends (CRL numbers are assigned under it)."""
    return session.get(CertificateAuthority, ca_id, with_for_update=True, populate_existing=True)


def latest_crl(session: Session, issuer_id: int) -> Crl | None:
    return session.scalars(select(Crl).where(Crl.issuer_id == issuer_id).order_by(Crl.crl_number.desc()).limit(1)).first()


def revoked_children(session: Session, ca_id: int) -> list[CertificateAuthority]:
    """The CAs this one issued that were revoked (what the root's CRL lists)."""
    return list(
        session.scalars(
            select(CertificateAuthority).where(
                CertificateAuthority.parent_id == ca_id, CertificateAuthority.revoked_at.is_not(None)
            )
        ).all()
    )


def add_crl(
    session: Session,
    *,
    issuer: CertificateAuthority,
    number: int,
    this_update: datetime,
    next_update: datetime,
    entries: int,
    der: bytes,
) -> Crl:
    row = Crl(
        issuer_id=issuer.id, crl_number=number, this_update=this_update, next_update=next_update, entries=entries,
        revocation_count=issuer.revocation_count, der=der, created_at=this_update,
    )  # fmt: skip
    session.add(row)
    session.flush()
    return row
