"""What the console's organisation, user, CRL and audit pages show, read through the same
services as the API (registry, certificates, login checks, notices, CRLs, checkpoints).
The SQL is in ca_service/store/helpdesk_pages.py."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ca_service.constants import LoginMethod
from ca_service.context import ServiceContext
from ca_service.errors import NotFound
from ca_service.services.audit import checkpoints as audit_checkpoints
from ca_service.services.audit import trail as audit
from ca_service.services.certificates.views import CertificateView, view_of
from ca_service.services.crl import publication as crl_publication
from ca_service.services.crl import root as root_crl
from ca_service.services.crl.publication import CrlDocument
from ca_service.services.crl.results import CrlResult
from ca_service.services.helpdesk import lookups as helpdesk
from ca_service.services.registry import login_checks
from ca_service.services.registry import organisations as registry
from ca_service.services.registry.organisations import OrganizationView, UserView
from ca_service.store import helpdesk_pages as store
from ca_service.store.db import reading

LOGIN_METHOD_ACTIONS = ("organization.created", "organization.login_method_switched")


@dataclass(frozen=True)
class OrgUser:
    login_id: str
    role: str
    display_name: str | None
    email: str | None
    current: CertificateView | None


@dataclass(frozen=True)
class OrgOverview:
    organization: OrganizationView
    login_method_history: list[dict[str, Any]]  # audit events, newest first (who, when, ticket)
    users: list[OrgUser]


def organization(ctx: ServiceContext, org_id: str) -> OrgOverview:
    org = registry.get_organization(ctx, org_id)  # NotFound for an unknown organisation
    now = ctx.clock.now()
    with reading(ctx.sessions) as session:
        users = store.users_of_org(session, org.org_id)
        current = {c.login_id: view_of(c, ctx, now) for c in store.current_certificates(session, [u.login_id for u in users])}
        history = [audit.event_dict(e) for e in store.events_about(session, [org.org_id], LOGIN_METHOD_ACTIONS)]
    rows = [OrgUser(u.login_id, u.role, u.display_name, u.email, current.get(u.login_id)) for u in users]
    return OrgOverview(org, history, rows)


@dataclass(frozen=True)
class LoginDiagnosis:
    """The answer of the same login check the front end makes, with what it was run on."""

    method: str  # the organisation's login method, which the check used
    allowed: bool
    reason: str | None  # login-checks' reason, or no-certificate (none was ever issued)
    serial: str | None  # the certificate presented (the user's newest)


@dataclass(frozen=True)
class UserOverview:
    user: UserView
    certificates: list[CertificateView]  # newest first
    revocations: dict[str, helpdesk.CertificateDetail]  # serial -> who revoked it, ticket
    events: list[dict[str, Any]]  # audit events about the user and its certificates, newest first
    notices: list[dict[str, Any]]
    diagnosis: LoginDiagnosis


def user(ctx: ServiceContext, login_id: str) -> UserOverview:
    found = registry.get_user(ctx, login_id)  # NotFound for an unknown login ID
    now = ctx.clock.now()
    with reading(ctx.sessions) as session:
        certs = [view_of(c, ctx, now) for c in store.certificates_of_login(session, found.login_id)]
        events = [audit.event_dict(e) for e in store.events_about(session, [found.login_id, *(c.serial for c in certs)])]
    revocations = {c.serial: helpdesk.certificate_detail(ctx, c.serial) for c in certs if c.revoked_at is not None}
    notices = helpdesk.list_notices(ctx, failed_only=False, login_id=found.login_id, limit=50)
    return UserOverview(found, certs, revocations, events, notices, diagnose(ctx, found, certs[0] if certs else None))


def diagnose(ctx: ServiceContext, found: UserView, newest: CertificateView | None) -> LoginDiagnosis:
    """ "Why can't this user log in?": the login check with the organisation's method and, for
    certificates, the user's newest certificate, exactly as the front end would ask it."""
    if found.login_method == LoginMethod.CERTIFICATE and newest is None:
        return LoginDiagnosis(found.login_method, False, "no-certificate", None)
    pem = newest.certificate_pem if found.login_method == LoginMethod.CERTIFICATE and newest is not None else None
    check = login_checks.check_login(ctx, found.login_id, found.login_method, pem, counted=False)
    return LoginDiagnosis(found.login_method, check.allowed, check.reason, newest.serial if pem and newest else None)


@dataclass(frozen=True)
class CrlOverview:
    issuing: CrlDocument | None
    root: CrlResult | None
    ocsp_responders: list[tuple[str, datetime]]  # name, notAfter


def crl_overview(ctx: ServiceContext) -> CrlOverview:
    try:
        issuing: CrlDocument | None = crl_publication.latest_crl(ctx, "issuing")
    except NotFound:
        issuing = None
    with reading(ctx.sessions) as session:
        responders = [(r.name, r.not_after) for r in store.ocsp_responders(session)]
    return CrlOverview(issuing, root_crl.stored_root_crl(ctx), responders)


def checkpoint_status(ctx: ServiceContext) -> dict[str, Any] | None:
    """The newest signed audit checkpoint, or None."""
    newest = audit_checkpoints.newest_first(ctx, limit=1)
    return newest[0] if newest else None
