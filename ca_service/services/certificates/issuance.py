"""Issuance and renewal: at most one valid certificate per login ID, race-safe.

The user row is locked (SELECT ... FOR UPDATE on PostgreSQL; BEGIN IMMEDIATE on SQLite) for the
short transaction that checks the rules, signs and inserts. The UNIQUE `current_login_id` column
backs the one-valid-certificate rule up in the database itself, and the UNIQUE `spki_sha256`
column *is* the key-reuse check: a reused key fails the insert, the transaction rolls back and
the caller gets 409 key-reused (no extra query on the hot path).

A master user's certificate is a paper matter (R9, Q11): a master's renewal
needs proof of the current key (`key_proven`: the REST view checked `current_key_signature` with
prove_current_key, or EST's simplereenroll authenticated with the current certificate), and a
master's new certificate after a revocation (not a renewal's superseded, not an expiry) needs an
enrolment code an operator minted with a ticket (`operator_authorised`). Issuances and renewals
count towards the per-organisation hourly brake (services/certificates/issuance_brake.py).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import timedelta

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from ca_service import metrics
from ca_service.constants import LoginMethod, RevocationReason, UserRole
from ca_service.context import Actor, ServiceContext
from ca_service.errors import Conflict, InvalidInput, NotFound, NotPermitted, Unavailable
from ca_service.outbox import records as outbox
from ca_service.pki.csr import CheckedCSR, CSRRejected, check_csr
from ca_service.pki.dates import add_months
from ca_service.pki.key_proof import csr_der, decode_signature, signed_by_certificate_key
from ca_service.pki.profile import ClientCertRequest, build_client_certificate
from ca_service.services import events
from ca_service.services.audit.change import Change, change
from ca_service.services.authority.hierarchy import ActiveIssuer, active_issuer, serial_hex
from ca_service.services.certificates import issuance_brake
from ca_service.services.certificates.revocation import mark_revoked
from ca_service.services.certificates.views import CertificateView, find_by_serial, status_of, view_of
from ca_service.store import certificates as certs
from ca_service.store import revocations as history
from ca_service.store.db import Tx, reading
from ca_service.store.errors import ActiveCertificateExists, KeyReused, SerialCollision
from ca_service.store.users import IssuanceSubject, lock_user_for_issuance
from ca_service.store.validity import is_valid


def _checked_csr(csr_pem: str) -> CheckedCSR:
    try:
        return check_csr(csr_pem)
    except CSRRejected as exc:
        raise InvalidInput(exc.detail, code=exc.code) from None


def _require_certificate_method(org_id: str, login_method: str | None) -> None:
    if login_method != LoginMethod.CERTIFICATE:
        raise Conflict(
            f"organisation {org_id} uses the {login_method} login method; certificates are issued only "
            "to organisations on the certificate method",
            code="login-method-not-certificate",
        )


def _lock_user(session: Tx, login_id: str) -> IssuanceSubject:
    """Lock the user for this issuance (store.users.lock_user_for_issuance); refuses unknown
    login IDs and organisations not on certificates."""
    user = lock_user_for_issuance(session, login_id)
    if user is None:
        raise NotFound(f"login ID {login_id} is not registered", code="user-not-found")
    _require_certificate_method(user.org_id, user.login_method)
    return user


def _signed(
    ctx: ServiceContext, issuer: ActiveIssuer, user: IssuanceSubject, csr: CheckedCSR, renewal_of: str | None
) -> certs.NewCertificate:
    """The new certificate, signed, as the values the store inserts."""
    now = ctx.clock.now().replace(microsecond=0)
    not_after = add_months(now, ctx.settings.cert_validity_months)
    if not_after > issuer.not_after:
        raise Unavailable(
            f"the issuing CA {issuer.name} expires at {issuer.not_after.isoformat()}, before a new certificate would; "
            "an operator must roll over to a new issuing CA",
            code="ca-rollover-required",
        )
    cert = build_client_certificate(
        ClientCertRequest(
            login_id=user.login_id,
            org_id=user.org_id,
            organization_name=ctx.settings.organization_name,
            public_key=csr.public_key,
            serial=x509.random_serial_number(),
            not_before=now - timedelta(seconds=ctx.settings.backdate_seconds),
            not_after=not_after,
        ),
        issuer.context,
    )
    der = cert.public_bytes(serialization.Encoding.DER)
    return certs.NewCertificate(
        serial=serial_hex(cert.serial_number),
        issuer_id=issuer.id,
        login_id=user.login_id,
        org_id=user.org_id,
        spki_sha256=csr.spki_sha256,
        fingerprint_sha256=hashlib.sha256(der).hexdigest(),
        key_description=csr.key_description,
        issued_at=now,
        not_before=cert.not_valid_before_utc,
        not_after=cert.not_valid_after_utc,
        der=der,
        renewal_of=renewal_of,
    )


def _with_retry(ctx: ServiceContext, op: str, login_id: str, attempt: Callable[[], CertificateView]) -> CertificateView:
    """Run `attempt` (a transaction) and map constraint races to the contract's errors."""
    for _ in range(3):
        try:
            return attempt()
        except KeyReused:
            raise Conflict("this public key was already certified; generate a new key pair", code="key-reused") from None
        except ActiveCertificateExists:
            with reading(ctx.sessions) as session:  # the winner committed: name its certificate, as the contract says
                winner = certs.current_serial(session, login_id)
            raise Conflict(
                f"a concurrent {op} already gave login ID {login_id} valid certificate {winner}; revoke it or renew it first",
                code="active-certificate-exists",
                serial=winner,
            ) from None
        except SerialCollision:
            continue
    raise Unavailable("could not allocate a unique serial number; try again", code="serial-collision")


def _braked(ctx: ServiceContext, actor: Actor, attempt: Callable[[], CertificateView], login_id: str, op: str) -> CertificateView:
    try:
        return _with_retry(ctx, op, login_id, attempt)
    except issuance_brake.IssuanceLimitReached as refused:
        issuance_brake.record_refusal(ctx, actor, refused)
        raise


def prove_current_key(ctx: ServiceContext, serial: str, csr_pem: str, signature_b64: str) -> bool:
    """The REST renewal's proof of the current key: `signature_b64` is base64 of a signature over
    the new CSR's DER made with the private key of certificate `serial` (ECDSA/SHA-256 or RSA
    PKCS#1 v1.5/SHA-256). True, or NotPermitted (a bad CSR gets its own error first)."""
    _checked_csr(csr_pem)
    data, signature = csr_der(csr_pem), decode_signature(signature_b64)
    with reading(ctx.sessions) as session:
        current = find_by_serial(session, serial)
        certificate_der, shown = current.der, current.serial
    if data is None or signature is None or not signed_by_certificate_key(certificate_der, data, signature):
        raise NotPermitted(
            f"current_key_signature does not verify: it must be base64 of a signature over the new CSR's DER made with "
            f"the private key of certificate {shown} (ECDSA with SHA-256, or RSA PKCS#1 v1.5 with SHA-256)"
        )
    return True


def _refuse_master_after_revocation(session: Tx, user: IssuanceSubject, operator_authorised: bool) -> None:
    if user.role != UserRole.MASTER or operator_authorised:
        return
    if history.has_help_desk_revocation(session, user.login_id):
        raise NotPermitted(
            f"login ID {user.login_id} is a master user whose certificate was revoked: the help desk issues a master's "
            "certificate after a revocation (paper procedure, Q11), with an enrolment code minted by an operator with a ticket"
        )


def issue_certificate(
    ctx: ServiceContext,
    actor: Actor,
    login_id: str,
    csr_pem: str,
    *,
    operator_authorised: bool = False,
    in_transaction: Callable[[Change, str], None] | None = None,
) -> tuple[CertificateView, str]:
    """Issue a new certificate (R1, R8, R10, R11). Returns the view and the chain PEM.
    `operator_authorised`: the enrolment code was minted by an operator with a ticket (EST).
    `in_transaction(uow, serial)` runs in the issuance's unit of work after the insert (EST
    uses its enrolment code there: a refused or failed issuance leaves the code unused)."""
    csr = _checked_csr(csr_pem)
    issuer = active_issuer(ctx)

    def attempt() -> CertificateView:
        with change(ctx, actor) as uow:
            session = uow.session
            user = _lock_user(session, login_id)
            now = ctx.clock.now()
            current = user.current
            if current is not None and is_valid(current, now):
                raise Conflict(
                    f"login ID {login_id} already holds valid certificate {current.serial}; revoke it or renew it first",
                    code="active-certificate-exists",
                    serial=current.serial,
                )
            _refuse_master_after_revocation(session, user, operator_authorised)
            if issuance_brake.braked(actor, operator_authorised):  # the organisation before a certificate row
                issuance_brake.check(session, ctx, user.org_id, login_id, "new", now)
            if current is not None:
                certs.release_current(session, current.id)  # expired: no longer blocks (R8)
            new = _signed(ctx, issuer, user, csr, renewal_of=None)
            event = uow.audit_row(
                "certificate.issued",
                target_type="certificate",
                target_id=new.serial,
                login_id=login_id,
                org_id=user.org_id,
                not_after=new.not_after,
                key=csr.key_description,
            )
            row = certs.insert_certificate(session, new, event)  # with its audit event: one round trip on PostgreSQL
            events.record(
                uow,
                events.CERTIFICATE_ISSUED,
                login_id=login_id,
                data={
                    "login_id": login_id,
                    "org_id": user.org_id,
                    "serial": row.serial,
                    "not_before": row.not_before,
                    "not_after": row.not_after,
                },
            )
            if in_transaction is not None:  # e.g. the EST enrolment code used up (after the issued event)
                in_transaction(uow, row.serial)
            return view_of(row, ctx, now)

    view = _braked(ctx, actor, attempt, login_id, "issuance")
    metrics.CERTIFICATES_ISSUED.labels("new").inc()
    return view, issuer.chain_pem


def renew_certificate(
    ctx: ServiceContext, actor: Actor, serial: str, csr_pem: str, *, key_proven: bool = False
) -> tuple[CertificateView, str]:
    """Renew inside the window (R6): successor issued, predecessor revoked as superseded, atomically.
    `key_proven`: the caller proved possession of the current certificate's key (REST: the view
    checked current_key_signature with prove_current_key; EST simplereenroll: TLS client auth).
    A master's renewal is refused without it."""
    csr = _checked_csr(csr_pem)
    issuer = active_issuer(ctx)
    with reading(ctx.sessions) as session:
        login_id = find_by_serial(session, serial).login_id

    def attempt() -> CertificateView:
        with change(ctx, actor) as uow:
            session = uow.session
            user = _lock_user(session, login_id)
            now = ctx.clock.now()
            if issuance_brake.braked(actor, False):  # the organisation before the certificate, as a revocation
                issuance_brake.check(session, ctx, user.org_id, login_id, "renewal", now)
            old = find_by_serial(session, serial, for_update=True)
            if status_of(old, now) != "active":
                raise Conflict(
                    f"certificate {old.serial} is {status_of(old, now)}; only an active certificate is renewed "
                    "(an expired or revoked one is replaced through a new issuance)",
                    code="certificate-not-active",
                    certificate_status=status_of(old, now),
                )
            opens_at = old.not_after - timedelta(days=ctx.settings.renewal_window_days)
            if now < opens_at:
                raise Conflict(
                    f"renewal opens {ctx.settings.renewal_window_days} days before expiry, on {opens_at.isoformat()}",
                    code="renewal-not-open",
                    opens_at=opens_at,
                )
            if user.role == UserRole.MASTER and not key_proven:
                raise NotPermitted(
                    f"certificate {old.serial} belongs to a master user: its renewal needs proof of the current key. Give "
                    "current_key_signature (base64 of the new CSR's DER signed with the current certificate's key), or "
                    "renew over EST with the current certificate (R9, Q11)"
                )
            certs.release_before_renewal(session, old)
            row = certs.insert_certificate(session, _signed(ctx, issuer, user, csr, renewal_of=old.serial))
            events.record(
                uow,
                events.CERTIFICATE_RENEWED,
                login_id=login_id,
                data={
                    "login_id": login_id,
                    "org_id": user.org_id,
                    "serial": row.serial,
                    "predecessor": old.serial,
                    "not_before": row.not_before,
                    "not_after": row.not_after,
                },
            )
            mark_revoked(uow, old, RevocationReason.SUPERSEDED, None, now)  # then drops its OCSP answers
            certs.mark_superseded(session, old, row.serial)
            uow.audit(
                "certificate.renewed",
                target_type="certificate",
                target_id=row.serial,
                login_id=login_id,
                predecessor=old.serial,
                not_after=row.not_after,
                key=csr.key_description,
            )
            uow.outbox(outbox.CRL_PUBLISH, reason="renewal", serial=old.serial)
            return view_of(row, ctx, now)

    view = _braked(ctx, actor, attempt, login_id, "renewal")
    metrics.CERTIFICATES_ISSUED.labels("renewal").inc()
    return view, issuer.chain_pem
