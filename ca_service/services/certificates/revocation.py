"""Revocation (R9, R10, R11) and the bank's rules on who may revoke what.

- A `frontend` caller acts for a bank user (`acting_login_id`): that user must be a master user
  of the same organisation as the certificate's owner, and the owner a general user (R10).
- An `operator` (help desk) may revoke any certificate; a master user's certificate only with
  the paper ticket (R9).
Every revocation frees the login ID at once for a new issuance (R10, R11), is audited, asks for
a CRL publication through the outbox, and drops the OCSP cache entry, in one transaction.
"""

from __future__ import annotations

from datetime import datetime

from ca_service import metrics
from ca_service.constants import ClientRole, UserRole
from ca_service.context import Actor, ServiceContext
from ca_service.errors import Conflict, InvalidInput, NotPermitted
from ca_service.outbox import records as outbox
from ca_service.pki.reasons import CALLER_REASONS
from ca_service.services import events
from ca_service.services.access.dual_control import require_approval
from ca_service.services.audit.change import Change, change
from ca_service.services.certificates import revocation_brake
from ca_service.services.certificates.views import CertificateView, find_by_serial, view_of
from ca_service.services.enrolment import codes as enrolment_codes
from ca_service.services.ocsp import cache as ocsp_cache
from ca_service.store import certificates as certs
from ca_service.store import users
from ca_service.store.db import reading
from ca_service.store.models import Certificate, User


def check_permission(
    *, caller_role: str, acting: User | None, owner: User, ticket: str | None, acting_login_id: str | None
) -> None:
    """Raise unless the caller may revoke a certificate of `owner` (DESIGN §4 revocation rules)."""
    if caller_role == ClientRole.OPERATOR:
        if owner.role == UserRole.MASTER and not ticket:
            raise InvalidInput(
                "a master user's certificate is revoked only on the paper procedure: give the ticket",
                code="ticket-required",
            )
        return
    if caller_role != ClientRole.FRONTEND:
        raise NotPermitted(f"role {caller_role} may not revoke certificates")
    if not acting_login_id:
        raise NotPermitted("the front end revokes on behalf of a master user: give acting_login_id")
    if acting is None:
        raise NotPermitted(f"acting user {acting_login_id} is not registered")
    if acting.role != UserRole.MASTER:
        raise NotPermitted(f"acting user {acting.login_id} is not a master user; only master users revoke certificates")
    if acting.org_id != owner.org_id:
        raise NotPermitted(f"acting user {acting.login_id} belongs to another organisation than the certificate's owner")
    if owner.role != UserRole.GENERAL:
        raise NotPermitted("a master user's certificate is revoked only by the help desk on the paper procedure (R9)")


def mark_revoked(uow: Change, cert: Certificate, reason: str, ticket: str | None, now: datetime) -> None:
    """Record the revocation on the row, in the audit trail and as an event (the caller holds the
    locks); the login ID can be issued a new certificate at once. Once committed, every API
    process drops its cached OCSP answers for the certificate, and the revocation is counted."""
    actor = uow.actor
    assert actor is not None
    certs.revoke(
        uow.session,
        cert,
        reason=reason,
        ticket=ticket,
        client_name=actor.client_name,
        acting_login_id=actor.acting_login_id,
        now=now,
        role=actor.role,
    )
    uow.audit(
        "certificate.revoked",
        target_type="certificate",
        target_id=cert.serial,
        login_id=cert.login_id,
        org_id=cert.org_id,
        reason=reason,
        ticket=ticket,
    )
    events.record(
        uow,
        events.CERTIFICATE_REVOKED,
        login_id=cert.login_id,
        data={"login_id": cert.login_id, "org_id": cert.org_id, "serial": cert.serial, "reason": reason, "revoked_at": now},
    )
    uow.on_commit(ocsp_cache.invalidate, uow.ctx, cert.issuer_id, cert.serial)
    uow.on_commit(_count_revoked, reason)


def _count_revoked(reason: str) -> None:
    metrics.CERTIFICATES_REVOKED.labels(reason).inc()


def revoke(
    ctx: ServiceContext,
    actor: Actor,
    serial: str,
    *,
    reason: str,
    acting_login_id: str | None = None,
    ticket: str | None = None,
) -> CertificateView:
    if reason not in CALLER_REASONS:  # superseded is the renewal's own reason
        raise InvalidInput(f"reason must be one of {', '.join(CALLER_REASONS)}", fields={"reason": "unknown reason"})
    with reading(ctx.sessions) as session:
        owner_login = find_by_serial(session, serial).login_id
    try:
        return _revoke(ctx, actor, serial, owner_login, reason, acting_login_id, ticket)
    except revocation_brake.RevocationLimitReached as refused:
        revocation_brake.record_refusal(ctx, actor, refused)
        raise


def _revoke(
    ctx: ServiceContext,
    actor: Actor,
    serial: str,
    owner_login: str,
    reason: str,
    acting_login_id: str | None,
    ticket: str | None,
) -> CertificateView:
    with change(ctx, actor) as uow:
        session = uow.session
        owner = users.get_user(session, owner_login, for_update=True)  # same lock order as issuance
        assert owner is not None
        revocation_brake.lock(session, actor, owner.org_id)
        cert = find_by_serial(session, serial, for_update=True)
        acting = users.get_user(session, acting_login_id) if acting_login_id else None
        check_permission(caller_role=actor.role, acting=acting, owner=owner, ticket=ticket, acting_login_id=acting_login_id)
        if cert.revoked_at is not None:
            raise Conflict(
                f"certificate {cert.serial} was already revoked at {cert.revoked_at.isoformat()} ({cert.revocation_reason})",
                code="already-revoked",
            )
        if owner.role == UserRole.MASTER:  # the front end never gets here (check_permission, R9)
            require_approval(ctx, actor, "revoking a master user's certificate")
        now = ctx.clock.now()
        revocation_brake.check(session, ctx, actor, cert.org_id, cert.serial, now)
        mark_revoked(uow, cert, reason, ticket, now)
        if actor.role == ClientRole.OPERATOR:  # the help desk (a lost PC, a master's paper procedure)
            enrolment_codes.void_in(uow, owner.login_id, "revoked-by-help-desk")
        uow.outbox(outbox.CRL_PUBLISH, reason="revocation", serial=cert.serial)
        return view_of(cert, ctx, now)
