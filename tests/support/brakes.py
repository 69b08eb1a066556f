"""An organisation of many certificate holders and a master, written directly, for the brakes'
tests (an hour's worth of front-end revocations or issuances in one organisation)."""

from __future__ import annotations

from datetime import timedelta

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from sqlalchemy import update

from ca_service.context import ServiceContext
from ca_service.store.models import User
from tests.support.api import Api
from tests.support.pki import make_csr
from tests.support.workers import insert_certificates


def real_certificate_der(api: Api) -> bytes:
    """One real certificate's DER for the bulk rows (a revocation answers with the certificate)."""
    api.org("donor")
    api.user("donor", "donor")
    pem = api.issue("donor", make_csr()[1]).json["certificate_pem"]
    return x509.load_pem_x509_certificate(pem.encode()).public_bytes(serialization.Encoding.DER)


def organisation_with_master(ctx: ServiceContext, org_id: str, users: int, der: bytes) -> list[str]:
    """`users` general users `{org_id}-uNN` with an active certificate each, and the master
    `{org_id}-boss` (who acts for the front end); returns the general users' serials."""
    now = ctx.clock.now()
    rows = [{"login_id": f"{org_id}-u{i:02d}", "not_after": now + timedelta(days=300)} for i in range(users)]
    rows.append({"login_id": f"{org_id}-boss", "not_after": now + timedelta(days=300)})
    serials = insert_certificates(ctx, org_id, rows, der=der)
    with ctx.engine.begin() as conn:
        conn.execute(update(User).where(User.login_id == f"{org_id}-boss").values(role="master"))
    return serials[:-1]
