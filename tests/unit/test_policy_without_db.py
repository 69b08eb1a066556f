"""Policy that needs no database, tested against fakes of what the store hands the services
(rows with the attributes the policy reads; store errors raised as the store raises them)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from ca_service.errors import Conflict, InvalidInput, NotPermitted, Unavailable
from ca_service.services.certificates import issuance
from ca_service.services.certificates.revocation import check_permission
from ca_service.store.errors import KeyReused, SerialCollision
from ca_service.store.validity import is_valid, status_of


@dataclass
class FakeUser:
    login_id: str
    org_id: str
    role: str


@dataclass
class FakeCertificate:
    revoked_at: datetime | None
    not_after: datetime


def test_validity_is_one_rule():
    now = datetime(2026, 6, 1, tzinfo=UTC)
    assert status_of(FakeCertificate(None, now + timedelta(seconds=1)), now) == "active"
    assert status_of(FakeCertificate(None, now), now) == "expired"  # notAfter itself is no longer valid
    assert status_of(FakeCertificate(now - timedelta(days=400), now - timedelta(days=1)), now) == "revoked"
    assert not is_valid(FakeCertificate(now, now + timedelta(days=1)), now)


MASTER, GENERAL = FakeUser("m", "acme", "master"), FakeUser("g", "acme", "general")
OTHER_MASTER = FakeUser("x", "other", "master")


@pytest.mark.parametrize(
    ("caller", "acting", "owner", "ticket", "refused"),
    [
        ("frontend", MASTER, GENERAL, None, None),  # R10: a master user revokes a general user's certificate
        ("frontend", GENERAL, GENERAL, None, NotPermitted),  # only master users revoke
        ("frontend", OTHER_MASTER, GENERAL, None, NotPermitted),  # of their own organisation only
        ("frontend", MASTER, MASTER, None, NotPermitted),  # a master's certificate: help desk only (R9)
        ("frontend", None, GENERAL, None, NotPermitted),  # acting user not registered
        ("operator", None, MASTER, None, InvalidInput),  # R9: the paper ticket
        ("operator", None, MASTER, "T-1", None),
        ("operator", None, GENERAL, None, None),
        ("auditor", None, GENERAL, None, NotPermitted),
    ],
)
def test_who_may_revoke(caller, acting, owner, ticket, refused):
    call: dict[str, Any] = {"caller_role": caller, "acting": acting, "owner": owner, "ticket": ticket}
    call["acting_login_id"] = acting.login_id if acting else ("ghost" if caller == "frontend" else None)
    if refused is None:
        check_permission(**call)
    else:
        with pytest.raises(refused):
            check_permission(**call)


def test_store_errors_become_the_contract_codes():
    def reused() -> issuance.CertificateView:
        raise KeyReused("uq_certificates_spki_sha256")

    with pytest.raises(Conflict) as conflict:
        issuance._with_retry(None, "issuance", "alice", reused)  # type: ignore[arg-type]
    assert conflict.value.code == "key-reused"
    attempts = []

    def collides() -> issuance.CertificateView:
        attempts.append(1)
        raise SerialCollision("uq_certificates_serial")

    with pytest.raises(Unavailable) as unavailable:
        issuance._with_retry(None, "issuance", "alice", collides)  # type: ignore[arg-type]
    assert unavailable.value.code == "serial-collision" and len(attempts) == 3  # a new serial each time
