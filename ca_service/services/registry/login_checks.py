"""Login checks (R1, R2, R6): on every login the front end asks whether this login ID may log
in with this method and, for certificates, this presented certificate. One indexed read, no
writes, no signing; the presented certificate's signature is verified only when its SHA-256 is not
the stored fingerprint of the certificate with its serial (when it is, we issued those exact
bytes, so the signature is ours: the check would be redundant)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes

from ca_service import metrics
from ca_service.context import ServiceContext
from ca_service.errors import InvalidInput
from ca_service.per_process import Expiring
from ca_service.services.authority.hierarchy import serial_hex
from ca_service.services.certificates.views import days_remaining
from ca_service.services.notices.scan import notice_dict
from ca_service.store.authorities import issuing_certificates
from ca_service.store.db import reading
from ca_service.store.hot_reads import login_check_rows

ISSUING_CAS_SECONDS = 60.0


class IssuingCas(Expiring[tuple[x509.Certificate, ...]]):
    """This process's copy of the issuing CAs a presented certificate may chain to (`ctx.local`)."""

    def __init__(self) -> None:
        super().__init__(ISSUING_CAS_SECONDS)


@dataclass(frozen=True)
class LoginCheck:
    allowed: bool
    reason: str | None
    certificate: dict[str, Any] | None = None
    notices: list[dict[str, Any]] = field(default_factory=list)


def _issuing_cas(ctx: ServiceContext) -> tuple[x509.Certificate, ...]:
    """Every issuing CA this service holds (older ones too, after a rollover), cached briefly."""

    def load() -> tuple[x509.Certificate, ...]:
        with reading(ctx.sessions) as session:
            return tuple(x509.load_der_x509_certificate(der) for _id, der in issuing_certificates(session))

    return ctx.local(IssuingCas).get(load)


def _chains_to_us(cert: x509.Certificate, cas: tuple[x509.Certificate, ...]) -> bool:
    for ca in cas:
        if ca.subject != cert.issuer:
            continue
        try:
            cert.verify_directly_issued_by(ca)
            return True
        except (ValueError, TypeError, InvalidSignature):
            continue
    return False


def _parse(pem: str | None) -> x509.Certificate:
    if not pem or "-----BEGIN CERTIFICATE-----" not in pem:
        raise InvalidInput("certificate_pem must be a PEM certificate", fields={"certificate_pem": "missing or not PEM"})
    try:
        return x509.load_pem_x509_certificate(pem.encode("utf-8", errors="replace"))
    except ValueError:
        raise InvalidInput("certificate_pem could not be parsed", fields={"certificate_pem": "unparseable certificate"}) from None


def check_login(
    ctx: ServiceContext, login_id: str, method: str, certificate_pem: str | None, *, counted: bool = True
) -> LoginCheck:
    """`counted=False`: the help desk asking why a user cannot log in (not a login: no metric)."""
    result = _check(ctx, login_id, method, certificate_pem)
    if not counted:
        return result
    metrics.LOGIN_CHECKS.labels("allowed" if result.allowed else result.reason or "refused").inc()
    return result


def _check(ctx: ServiceContext, login_id: str, method: str, certificate_pem: str | None) -> LoginCheck:
    now = ctx.clock.now()
    presented = _parse(certificate_pem) if method == "certificate" else None
    serial = serial_hex(presented.serial_number) if presented is not None else None
    rows = login_check_rows(ctx.hot_reader, login_id, serial)  # the whole check: one indexed read
    if not rows:
        return LoginCheck(False, "user-not-found")
    first = rows[0]
    if presented is None:  # id_password (R2: refused once the organisation uses certificates)
        if first.login_method == "certificate":
            return LoginCheck(False, "certificate-required")
        return LoginCheck(True, None)
    stored = first if first.serial is not None else None
    issued_here = stored is not None and stored.fingerprint_sha256 == presented.fingerprint(hashes.SHA256()).hex()
    if not issued_here and not _chains_to_us(presented, _issuing_cas(ctx)):
        return LoginCheck(False, "unknown-issuer")
    summary = None
    if stored is not None and stored.not_after is not None:
        summary = {
            "serial": stored.serial,
            "not_after": stored.not_after,
            "days_remaining": days_remaining(stored.not_after, now, ctx.settings.tz),
        }
    reason = None
    if now < presented.not_valid_before_utc:
        reason = "not-yet-valid"
    elif now >= presented.not_valid_after_utc:
        reason = "expired"
    elif stored is None or not issued_here:
        reason, summary = "unknown-certificate", None
    elif stored.revoked_at is not None:
        reason = "revoked"
    elif stored.certificate_login_id != login_id:
        reason = "login-id-mismatch"  # R1: a certificate binds one login ID only
    elif first.login_method != "certificate":
        reason = "login-method-not-certificate"
    notices = []
    if reason is None:
        notices = [
            notice_dict(ctx, r.notice_kind, r.serial, r.not_after, r.notice_created_at, now)
            for r in rows
            if r.notice_kind is not None and r.serial is not None and r.not_after is not None and r.notice_created_at is not None
        ]
    return LoginCheck(reason is None, reason, summary, notices)
