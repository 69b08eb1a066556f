"""Database access for audit checkpoints (services.audit.checkpoints holds the policy; this
module never signs)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from ca_service.store.models import AuditCheckpoint, AuditEvent

# The same advisory lock as the sealer's (services.audit.trail): a checkpoint reads a head no sealer moves.
CHAIN_LOCK_KEY = 0x6361_7564


@dataclass(frozen=True)
class ChainHead:
    event_count: int  # highest sealed chain_index (0: empty chain)
    head_hash: str | None  # that event's hash


@dataclass(frozen=True)
class CheckpointAgainstChain:
    """A stored checkpoint with the hash the chain holds today at its event_count (None: no such event)."""

    row: AuditCheckpoint
    chain_hash: str | None


def lock_chain(session: Session) -> None:
    """Until the transaction ends: no sealing and no other checkpoint (PostgreSQL; SQLite write
    transactions are already serialised)."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": CHAIN_LOCK_KEY})


def chain_head(session: Session) -> ChainHead:
    row = session.execute(
        select(AuditEvent.chain_index, AuditEvent.hash)
        .where(AuditEvent.chain_index.is_not(None))
        .order_by(AuditEvent.chain_index.desc())
        .limit(1)
    ).first()
    return ChainHead(int(row[0]), row[1]) if row else ChainHead(0, None)


def sealed_count(session: Session) -> int:
    return int(session.scalar(select(func.count()).select_from(AuditEvent).where(AuditEvent.chain_index.is_not(None))) or 0)


def latest(session: Session) -> AuditCheckpoint | None:
    return session.scalars(select(AuditCheckpoint).order_by(AuditCheckpoint.seq.desc()).limit(1)).first()


def insert(
    session: Session, *, seq: int, event_count: int, head_hash: str, signed_at: datetime, key_id: str, signature: str
) -> AuditCheckpoint:
    row = AuditCheckpoint(
        seq=seq, event_count=event_count, head_hash=head_hash, signed_at=signed_at, key_id=key_id, signature=signature
    )
    session.add(row)
    session.flush()
    return row


def newest_first(session: Session, *, limit: int, before_seq: int | None = None) -> Sequence[AuditCheckpoint]:
    stmt = select(AuditCheckpoint).order_by(AuditCheckpoint.seq.desc()).limit(limit)
    if before_seq is not None:
        stmt = stmt.where(AuditCheckpoint.seq < before_seq)
    return session.scalars(stmt).all()


def by_seq(session: Session, seq: int) -> AuditCheckpoint | None:
    return session.get(AuditCheckpoint, seq)


def all_against_chain(session: Session) -> list[CheckpointAgainstChain]:
    """Every checkpoint, oldest first, with the chain's hash at its event_count (one query)."""
    rows = session.execute(
        select(AuditCheckpoint, AuditEvent.hash)
        .outerjoin(AuditEvent, AuditEvent.chain_index == AuditCheckpoint.event_count)
        .order_by(AuditCheckpoint.seq)
    ).all()
    return [CheckpointAgainstChain(row, chain_hash) for row, chain_hash in rows]


def event_id_at(session: Session, chain_index: int) -> int | None:
    return session.scalar(select(AuditEvent.id).where(AuditEvent.chain_index == chain_index))


def hash_at(session: Session, chain_index: int) -> str | None:
    return session.scalar(select(AuditEvent.hash).where(AuditEvent.chain_index == chain_index))
