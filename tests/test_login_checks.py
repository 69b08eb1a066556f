"""Login checks: every reason, in-process against the same database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from sqlalchemy import update

from ca_service.store.models import Certificate
from tests.support.pki import make_csr


def check(api, login_id, pem=None, method="certificate"):
    r = api.post("/v1/login-checks", json={"login_id": login_id, "method": method, **({"certificate_pem": pem} if pem else {})})
    assert r.status == 200, r
    return r.json


def _foreign_certificate(cn: str) -> str:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now).not_valid_after(now + timedelta(days=30))
        .sign(key, hashes.SHA256())
    )  # fmt: skip
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def test_every_reason(api, ctx, clock):
    api.org("acme")
    api.org("legacy", login_method="id_password")
    api.user("alice", "acme")
    api.user("bob", "acme")
    api.user("carol", "legacy")
    cert = api.issue("alice", make_csr()[1]).json
    pem = cert["certificate_pem"]

    ok = check(api, "alice", pem)
    assert ok["allowed"] is True and ok["reason"] is None and ok["certificate"]["serial"] == cert["serial"]
    assert ok["certificate"]["days_remaining"] >= 365 and ok["notices"] == []
    assert check(api, "nobody", pem)["reason"] == "user-not-found"
    assert check(api, "alice", method="id_password")["reason"] == "certificate-required"
    assert check(api, "carol", method="id_password") == {"allowed": True, "reason": None, "certificate": None, "notices": []}
    assert check(api, "bob", pem)["reason"] == "login-id-mismatch"
    assert check(api, "alice", _foreign_certificate("alice"))["reason"] == "unknown-issuer"

    # a certificate our CA signed but the database does not know (e.g. from a restored backup)
    with ctx.engine.begin() as conn:
        conn.execute(update(Certificate).where(Certificate.serial == cert["serial"]).values(serial="abc123"))
    assert check(api, "alice", pem)["reason"] == "unknown-certificate"
    with ctx.engine.begin() as conn:
        conn.execute(update(Certificate).where(Certificate.serial == "abc123").values(serial=cert["serial"]))

    with ctx.engine.begin() as conn:  # the organisation left the certificate method (without revocation)
        conn.execute(update(Certificate.__table__.metadata.tables["organizations"]).values(login_method="id_password"))
    assert check(api, "alice", pem)["reason"] == "login-method-not-certificate"
    with ctx.engine.begin() as conn:
        conn.execute(update(Certificate.__table__.metadata.tables["organizations"]).values(login_method="certificate"))

    clock.travel(minutes=-10)  # before notBefore (issuance minus the 5-minute backdate)
    assert check(api, "alice", pem)["reason"] == "not-yet-valid"
    clock.reset()
    api.post(f"/v1/certificates/{cert['serial']}/revocation", role="operator", json={"reason": "key_compromise"})
    revoked = check(api, "alice", pem)
    assert revoked["allowed"] is False and revoked["reason"] == "revoked" and revoked["certificate"]["serial"] == cert["serial"]
    clock.travel(days=400)
    assert check(api, "alice", pem)["reason"] == "expired"


def test_bad_certificate_pem_is_a_validation_error(api):
    api.org("acme")
    api.user("alice", "acme")
    r = api.post("/v1/login-checks", json={"login_id": "alice", "method": "certificate", "certificate_pem": "garbage"})
    assert r.status == 400 and r.code == "validation-error" and r.json["errors"][0]["field"] == "certificate_pem"
    r = api.post("/v1/login-checks", json={"login_id": "alice", "method": "password"})
    assert r.status == 400 and r.code == "validation-error"


def test_login_check_takes_a_pem_with_trailing_blank_lines(api):
    """A certificate file printed with an extra newline (the README's walk-through writes one) is
    still a certificate; anything else after it is not."""
    api.org("acme")
    api.user("alice", "acme")
    pem = api.issue("alice", make_csr()[1]).json["certificate_pem"]
    for tail in ("", "\n", "\n\n", "\r\n\r\n"):
        r = api.post(
            "/v1/login-checks",
            json={"login_id": "alice", "method": "certificate", "certificate_pem": pem.rstrip("\n") + "\n" + tail},
        )
        assert r.status == 200 and r.json["allowed"], (repr(tail), r)
    r = api.post("/v1/login-checks", json={"login_id": "alice", "method": "certificate", "certificate_pem": pem + "x"})
    assert r.status == 400
