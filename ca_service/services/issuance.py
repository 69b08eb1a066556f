"""Issuance and renewal: at most one valid certificate per login ID, race-safe.

The user row is locked (SELECT ... FOR UPDATE on PostgreSQL; BEGIN IMMEDIATE on SQLite) for the
short transaction that checks the rules, signs and inserts. The UNIQUE `current_login_id` column
backs the one-valid-certificate rule up in the database itself, and the UNIQUE `spki_sha256`
column *is* the key-reuse check: a reused key fails the insert, the transaction rolls back and
the caller gets 409 key-reused (no extra query on the hot path).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import timedelta

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from ca_service import metrics
from ca_service.constants import LoginMethod, RevocationReason
from ca_service.context import Actor, ServiceContext
from ca_service.errors import Conflict, InvalidInput, NotFound, Unavailable
from ca_service.outbox import records as outbox
from ca_service.pki.csr import CheckedCSR, CSRRejected, check_csr
from ca_service.pki.dates import add_months
from ca_service.pki.profile import ClientCertRequest, build_client_certificate
from ca_service.services import audit, ocsp_cache
from ca_service.services.authorities import ActiveIssuer, active_issuer, serial_hex
from ca_service.services.certificates import CertificateView, find_by_serial, status_of, view_of
from ca_service.services.post_commit import after_commit
from ca_service.services.revocation import mark_revoked
from ca_service.store import certificates as certs
from ca_service.store.db import Tx, reading, transaction
from ca_service.store.errors import ActiveCertificateExists, KeyReused, SerialCollision
from ca_service.store.models import Certificate
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


def _sign_and_insert(
    session: Tx,
    ctx: ServiceContext,
    issuer: ActiveIssuer,
    user: IssuanceSubject,
    csr: CheckedCSR,
    renewal_of: str | None,
) -> Certificate:
    row = _signed_row(ctx, issuer, user, csr, renewal_of)
    certs.insert_certificate(session, row)  # the row stays transient: it only feeds the response view
    return row


def _signed_row(
    ctx: ServiceContext, issuer: ActiveIssuer, user: IssuanceSubject, csr: CheckedCSR, renewal_of: str | None
) -> Certificate:
    """The new certificate, signed, as the (transient) row to insert."""
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
    return Certificate(
        serial=serial_hex(cert.serial_number),
        issuer_id=issuer.id,
        login_id=user.login_id,
        org_id=user.org_id,
        current_login_id=user.login_id,
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


def issue_certificate(
    ctx: ServiceContext,
    actor: Actor,
    login_id: str,
    csr_pem: str,
    *,
    in_transaction: Callable[[Tx, str], None] | None = None,
) -> tuple[CertificateView, str]:
    """Issue a new certificate (R1, R8, R10, R11). Returns the view and the chain PEM.
    `in_transaction(session, serial)` runs in the issuance's transaction after the insert (EST
    uses its enrolment code there: a refused or failed issuance leaves the code unused)."""
    csr = _checked_csr(csr_pem)
    issuer = active_issuer(ctx)

    def attempt() -> CertificateView:
        with transaction(ctx.sessions) as session:
            user = _lock_user(session, login_id)
            now = ctx.clock.now()
            current = user.current
            if current is not None:
                if is_valid(current, now):
                    raise Conflict(
                        f"login ID {login_id} already holds valid certificate {current.serial}; revoke it or renew it first",
                        code="active-certificate-exists",
                        serial=current.serial,
                    )
                certs.release_current(session, current.id)  # expired: no longer blocks (R8)
            row = _signed_row(ctx, issuer, user, csr, renewal_of=None)
            event = audit.event(
                ctx, actor, "certificate.issued", "certificate", row.serial,
                login_id=login_id, org_id=user.org_id, not_after=row.not_after, key=csr.key_description,
            )  # fmt: skip
            certs.insert_certificate(session, row, event)  # with its audit event: one round trip on PostgreSQL
            if in_transaction is not None:
                in_transaction(session, row.serial)
            return view_of(row, ctx, now)

    view = _with_retry(ctx, "issuance", login_id, attempt)
    metrics.CERTIFICATES_ISSUED.labels("new").inc()
    after_commit(ctx)
    return view, issuer.chain_pem


def renew_certificate(ctx: ServiceContext, actor: Actor, serial: str, csr_pem: str) -> tuple[CertificateView, str]:
    """Renew inside the window (R6): successor issued, predecessor revoked as superseded, atomically."""
    csr = _checked_csr(csr_pem)
    issuer = active_issuer(ctx)
    with reading(ctx.sessions) as session:
        predecessor = find_by_serial(session, serial)
        login_id, predecessor_issuer = predecessor.login_id, predecessor.issuer_id

    def attempt() -> CertificateView:
        with transaction(ctx.sessions) as session:
            user = _lock_user(session, login_id)
            old = find_by_serial(session, serial, for_update=True)
            now = ctx.clock.now()
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
            certs.release_before_renewal(session, old)
            row = _sign_and_insert(session, ctx, issuer, user, csr, renewal_of=old.serial)
            mark_revoked(session, ctx, actor, old, RevocationReason.SUPERSEDED, None, now)
            certs.mark_superseded(session, old, row.serial)
            audit.record(
                session,
                ctx,
                actor,
                "certificate.renewed",
                "certificate",
                row.serial,
                login_id=login_id,
                predecessor=old.serial,
                not_after=row.not_after,
                key=csr.key_description,
            )
            outbox.add(session, ctx, actor, outbox.CRL_PUBLISH, reason="renewal", serial=old.serial)
            return view_of(row, ctx, now)

    view = _with_retry(ctx, "renewal", login_id, attempt)
    metrics.CERTIFICATES_ISSUED.labels("renewal").inc()
    metrics.CERTIFICATES_REVOKED.labels(RevocationReason.SUPERSEDED).inc()
    if view.renewal_of is not None:
        ocsp_cache.invalidate(ctx, predecessor_issuer, view.renewal_of)
    after_commit(ctx, outbox=True)
    return view, issuer.chain_pem
