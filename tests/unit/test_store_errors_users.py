"""A first PUT that loses the race for a login ID (the same spelling, or one differing only in
case) is store.errors.LoginIdTaken, chosen by the constraint's name on a real SQLite database
(PostgreSQL names pk_users / uq_users_login_id_lower itself: tests/security/test_leaks.py)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import create_engine, exc
from sqlalchemy.orm import Session

from ca_service.store.errors import LoginIdTaken, translate
from ca_service.store.models import Base, Organization, User

NOW = datetime(2026, 12, 1, tzinfo=UTC)


def _user(login_id: str) -> User:
    return User(login_id=login_id, org_id="acme", role="general", created_at=NOW, updated_at=NOW)


@pytest.mark.parametrize("second", ["alice", "ALICE"])
def test_a_duplicate_login_id_is_login_id_taken(second: str) -> None:
    engine = create_engine("sqlite://")
    Base.metadata.create_all(engine)
    with Session(engine) as session:
        session.add(Organization(org_id="acme", name="Acme", login_method="certificate", created_at=NOW, updated_at=NOW))
        session.add(_user("alice"))
        session.commit()
        session.add(_user(second))
        with pytest.raises(exc.IntegrityError) as raised:
            session.flush()
    error = translate(raised.value)
    assert isinstance(error, LoginIdTaken), (str(raised.value.orig), error)
    assert error.constraint in ("uq_users_login_id", "uq_users_login_id_lower")
