"""EST workflows (RFC 7030, DESIGN §4c). No second issuance path: simpleenroll calls
issuance.issue_certificate and simplereenroll issuance.renew_certificate, so every rule of
§1 and §3 holds as for the REST endpoints.

simpleenroll: the Basic credentials `login_id:code` are checked first (services/enrolment/codes:
a wrong one counts), then the CSR is issued on; the code is used up inside the issuance's
transaction, after the certificate's insert. So a refused or failed issuance (key-reused,
active-certificate-exists, a bad CSR, the CA unavailable) leaves the code usable for another try
within its lifetime, and of two enrolments racing with one code exactly one gets a certificate
(the user row lock orders them; the loser finds the code used, or the winner's certificate).

simplereenroll: the current certificate, verified by nginx (TLS client authentication) and
forwarded as X-SSL-Client-Cert, a header api/proxy.py keeps only from CA_TRUSTED_PROXIES. It must
be a certificate this CA holds (same SHA-256), active, and its login ID's current one.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from ca_service import metrics
from ca_service.constants import CaKind, ClientRole
from ca_service.context import Actor, ServiceContext
from ca_service.errors import InvalidInput, ServiceError, Unavailable
from ca_service.pki import est as pki_est
from ca_service.services.audit.change import Change
from ca_service.services.certificates import issuance
from ca_service.services.certificates.views import CertificateView, find_by_serial, status_of
from ca_service.services.enrolment import codes
from ca_service.store import authorities as cas
from ca_service.store import certificates as certs
from ca_service.store.db import reading

EST_CLIENT = "est"  # the audit trail's client name for EST enrolments (the bank user is acting_login_id)


@dataclass(frozen=True)
class RenewalInfo:
    start: datetime
    end: datetime


def _actor(login_id: str | None, request_id: str | None) -> Actor:
    # The user enrols for themselves through the bank's app: a front-end action (the issuance
    # and revocation brakes treat it as the REST front end's), acting for the login ID.
    return Actor(client_name=EST_CLIENT, role=ClientRole.FRONTEND, acting_login_id=login_id, request_id=request_id)


def ca_certificates(ctx: ServiceContext) -> bytes:
    """DER certs-only PKCS#7: the issuing CA(s) still valid (the active one first) and the root."""
    now = ctx.clock.now()
    with reading(ctx.sessions) as session:
        active = cas.active_ca(session, CaKind.ISSUING)
        root = cas.active_ca(session, CaKind.ROOT)
        if active is None or root is None:
            raise Unavailable("the CA hierarchy is not initialised: run `ca-service init`", code="ca-not-initialised")
        ders = [active.der]
        for ca_id in cas.issuing_ids_valid_after(session, now):
            row = cas.get_ca(session, ca_id)
            if row is not None and row.id != active.id:
                ders.append(row.der)
        ders.append(root.der)
    return pki_est.certs_only([x509.load_der_x509_certificate(d) for d in ders])


def csr_attributes() -> bytes:
    return pki_est.csr_attributes()


def _csr_pem(body: bytes) -> str:
    try:
        return pki_est.csr_pem_from_body(body)
    except pki_est.EstBodyRejected as exc:
        raise InvalidInput(exc.detail, code="invalid-csr") from None


def _issued(view: CertificateView) -> bytes:
    cert = x509.load_pem_x509_certificate(view.certificate_pem.encode())
    return pki_est.certs_only([cert])


def _count(operation: str, exc: BaseException | None) -> None:
    if exc is None:
        outcome = "issued"
    elif isinstance(exc, codes.EnrolmentUnauthenticated):
        outcome = "unauthenticated"
    elif isinstance(exc, ServiceError):
        outcome = "refused"
    else:
        outcome = "error"
    metrics.EST_ENROLMENTS.labels(operation, outcome).inc()


def simple_enroll(ctx: ServiceContext, login_id: str, code: str, body: bytes, request_id: str | None = None) -> bytes:
    """Issue the login ID's certificate for the CSR in `body`, authenticated by its one-time
    code. Returns the DER certs-only PKCS#7 holding the new certificate."""
    try:
        verified = codes.verify(ctx, _actor(None, request_id), login_id, code)
        actor = _actor(verified.login_id, request_id)
        csr_pem = _csr_pem(body)

        def use_code(uow: Change, serial: str) -> None:
            codes.use_in(uow, verified, serial)

        view, _chain = issuance.issue_certificate(
            ctx, actor, verified.login_id, csr_pem,
            operator_authorised=verified.operator_authorised,  # a help-desk code with a ticket (Q11)
            in_transaction=use_code,
        )  # fmt: skip
    except Exception as exc:
        _count("simpleenroll", exc)
        raise
    _count("simpleenroll", None)
    return _issued(view)


def _presented(ctx: ServiceContext, header: str | None) -> tuple[str, str]:
    """(serial, login ID) of the certificate nginx forwarded, if it is a login ID's current
    active certificate of this CA; else EnrolmentUnauthenticated."""
    if not header:
        raise codes.EnrolmentUnauthenticated("present your current certificate (TLS client authentication)")
    try:
        cert = pki_est.forwarded_certificate(header)
    except pki_est.EstBodyRejected:
        raise codes.EnrolmentUnauthenticated("the presented client certificate could not be read") from None
    fingerprint = hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest()
    now = ctx.clock.now()
    with reading(ctx.sessions) as session:
        row = certs.by_fingerprint(session, fingerprint)
        if row is None:
            raise codes.EnrolmentUnauthenticated("the presented certificate was not issued by this CA")
        status = status_of(row, now)
        if status != "active" or row.current_login_id != row.login_id:
            raise codes.EnrolmentUnauthenticated(
                f"the presented certificate is {status if status != 'active' else 'not current'}: "
                "only the login ID's current valid certificate re-enrols; otherwise enrol with a new code"
            )
        return row.serial, row.login_id


def simple_reenroll(ctx: ServiceContext, client_cert: str | None, body: bytes, request_id: str | None = None) -> bytes:
    """Renew the presented current certificate inside the renewal window (R6): successor
    issued, predecessor superseded, through issuance.renew_certificate."""
    try:
        serial, login_id = _presented(ctx, client_cert)
        csr_pem = _csr_pem(body)
        view, _chain = issuance.renew_certificate(
            ctx,
            _actor(login_id, request_id),
            serial,
            csr_pem,
            key_proven=True,  # TLS client auth proved the current key
        )
    except Exception as exc:
        _count("simplereenroll", exc)
        raise
    _count("simplereenroll", None)
    return _issued(view)


def renewal_info(ctx: ServiceContext, serial: str) -> RenewalInfo:
    """RFC 9773's suggested window: from the renewal window's opening (notAfter minus
    CA_RENEWAL_WINDOW_DAYS, 40 by default) to one day before notAfter."""
    with reading(ctx.sessions) as session:
        row = find_by_serial(session, serial)
        not_after = row.not_after
    return RenewalInfo(not_after - timedelta(days=ctx.settings.renewal_window_days), not_after - timedelta(days=1))
