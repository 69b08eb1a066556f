"""API clients (bearer tokens stored as SHA-256)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from ca_service.store.models import ApiClient


def add(
    session: Session, *, client_id: str, name: str, role: str, token_hash: str, created_at: datetime, expires_at: datetime | None
) -> ApiClient:
    """The new client; DuplicateName (store.errors) at commit if the name is taken."""
    row = ApiClient(
        client_id=client_id, name=name, role=role, token_hash=token_hash, created_at=created_at, expires_at=expires_at
    )
    session.add(row)
    return row


def all_clients(session: Session) -> list[ApiClient]:
    return list(session.scalars(select(ApiClient).order_by(ApiClient.created_at)))


def by_name_or_id(session: Session, name_or_id: str, *, for_update: bool = False) -> ApiClient | None:
    stmt = select(ApiClient).where((ApiClient.name == name_or_id) | (ApiClient.client_id == name_or_id))
    return session.scalars(stmt.with_for_update() if for_update else stmt).first()


def by_token_hash(session: Session, digest: str) -> ApiClient | None:
    """The client whose current token, or whose replaced token (still in or past its rotation
    grace period: the caller checks the time), has this hash."""
    stmt = select(ApiClient).where((ApiClient.token_hash == digest) | (ApiClient.previous_token_hash == digest))
    return session.scalars(stmt).first()
