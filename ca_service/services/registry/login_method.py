"""Switching an organisation's login method: a paper procedure, operators only, with the ticket
(R2, R3). Switching to id_password revokes every valid certificate of the organisation."""

from __future__ import annotations

from dataclasses import dataclass

from ca_service.constants import LoginMethod, RevocationReason
from ca_service.context import Actor, ServiceContext
from ca_service.errors import InvalidInput
from ca_service.outbox import records as outbox
from ca_service.services import events
from ca_service.services.access.dual_control import require_approval
from ca_service.services.audit.change import change
from ca_service.services.certificates.revocation import mark_revoked
from ca_service.services.certificates.views import CertificateView, view_of
from ca_service.services.enrolment import codes as enrolment_codes
from ca_service.services.registry.organisations import LOGIN_METHODS, get_org_row
from ca_service.store.certificates import valid_certificates_of_org
from ca_service.store.db import reading


@dataclass(frozen=True)
class SwitchResult:
    org_id: str
    login_method: str
    previous_login_method: str
    revoked: list[CertificateView]


def switch_login_method(ctx: ServiceContext, actor: Actor, org_id: str, login_method: str, ticket: str) -> SwitchResult:
    if login_method not in LOGIN_METHODS:
        raise InvalidInput("login_method must be certificate or id_password", fields={"login_method": "unknown method"})
    if not ticket or not ticket.strip():
        raise InvalidInput("the paper ticket is required to switch the login method", code="ticket-required")
    require_approval(ctx, actor, "switching an organisation's login method")
    revoked: list[CertificateView] = []
    with change(ctx, actor) as uow:
        session = uow.session
        # FOR UPDATE on the organisation conflicts with the KEY SHARE lock issuance takes on it,
        # so no certificate can be issued half-way through a switch.
        org = get_org_row(session, org_id, for_update=True)
        previous = org.login_method
        if previous == login_method:
            return SwitchResult(org_id, login_method, previous, [])
        now = ctx.clock.now()
        if login_method == LoginMethod.ID_PASSWORD:
            valid = valid_certificates_of_org(session, org_id, now, for_update=True)
            for cert in valid:  # each drops its OCSP answers once committed
                mark_revoked(uow, cert, RevocationReason.CESSATION_OF_OPERATION, ticket, now)
            if valid:
                uow.outbox(outbox.CRL_PUBLISH, reason="login-method-switch", org_id=org_id)
            revoked = [view_of(c, ctx, now) for c in valid]
            enrolment_codes.void_org_in(uow, org_id, "login-method-switched")  # codes minted for the old method
        org.login_method, org.updated_at = login_method, now
        uow.audit(
            "organization.login_method_switched",
            target_type="organization",
            target_id=org_id,
            previous=previous,
            login_method=login_method,
            ticket=ticket,
            revoked=len(revoked),
        )
        events.record(
            uow,
            events.ORGANIZATION_LOGIN_METHOD_CHANGED,
            org_id=org_id,
            data={"org_id": org_id, "login_method": login_method, "previous": previous, "revoked": len(revoked)},
        )
    return SwitchResult(org_id, login_method, previous, revoked)


def certificates_to_revoke(ctx: ServiceContext, org_id: str, login_method: str) -> list[CertificateView]:
    """What a switch to `login_method` would revoke now (the console lists them before confirming)."""
    now = ctx.clock.now()
    with reading(ctx.sessions) as session:
        org = get_org_row(session, org_id)
        if login_method != LoginMethod.ID_PASSWORD or org.login_method == login_method:
            return []
        return [view_of(c, ctx, now) for c in valid_certificates_of_org(session, org_id, now)]
