"""API clients (bearer tokens stored as SHA-256)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from ca_service.store.models import ApiClient


def add(session: Session, row: ApiClient) -> None:
    """DuplicateName (store.errors) at commit if the name is taken."""
    session.add(row)


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
