"""Organisations and users, as the bank's front end and operators register them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from ca_service.constants import LoginMethod, UserRole
from ca_service.context import Actor, ServiceContext
from ca_service.errors import Conflict, InvalidInput, NotFound, NotPermitted
from ca_service.services import events
from ca_service.services.access.dual_control import require_approval
from ca_service.services.audit.change import change
from ca_service.services.certificates.views import CertificateView, view_of
from ca_service.services.enrolment import codes as enrolment_codes
from ca_service.store import users
from ca_service.store.certificates import current_certificate
from ca_service.store.db import Tx, reading
from ca_service.store.errors import LoginIdTaken
from ca_service.store.models import Organization, User
from ca_service.store.validity import is_valid

LOGIN_METHODS = tuple(m.value for m in LoginMethod)  # plain strings (click.Choice, messages)
USER_ROLES = tuple(r.value for r in UserRole)


@dataclass(frozen=True)
class OrganizationView:
    org_id: str
    name: str
    login_method: str
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class UserView:
    login_id: str
    org_id: str
    role: str
    email: str | None
    display_name: str | None
    login_method: str
    created_at: datetime
    updated_at: datetime
    current_certificate: CertificateView | None


def org_view(org: Organization) -> OrganizationView:
    return OrganizationView(org.org_id, org.name, org.login_method, org.created_at, org.updated_at)


def get_org_row(session: Tx, org_id: str, *, for_update: bool = False) -> Organization:
    org = users.get_org(session, org_id, for_update=for_update)
    if org is None:
        raise NotFound(f"organisation {org_id} does not exist", code="organization-not-found")
    return org


def put_organization(
    ctx: ServiceContext, actor: Actor, org_id: str, name: str, login_method: str | None
) -> tuple[OrganizationView, bool]:
    """Create (optionally with an initial login method) or rename. Returns (view, created).
    Changing the login method of an existing organisation goes through the paper procedure."""
    now = ctx.clock.now()
    with change(ctx, actor) as uow:
        session = uow.session
        org = users.get_org(session, org_id, for_update=True)
        if org is None:
            org = users.add_organization(
                session, org_id=org_id, name=name, login_method=login_method or LoginMethod.ID_PASSWORD, now=now
            )
            uow.audit(
                "organization.created", target_type="organization", target_id=org_id, name=name, login_method=org.login_method
            )
            created = True
        else:
            if login_method is not None and login_method != org.login_method:
                raise Conflict(
                    "the login method of an existing organisation is changed only through "
                    f"POST /v1/organizations/{org_id}/login-method with a paper ticket",
                    code="login-method-change-requires-ticket",
                )
            created = False
            if org.name != name:
                uow.audit("organization.renamed", target_type="organization", target_id=org_id, old_name=org.name, name=name)
                org.name, org.updated_at = name, now
        view = org_view(org)
    return view, created


def get_organization(ctx: ServiceContext, org_id: str) -> OrganizationView:
    with reading(ctx.sessions) as session:
        return org_view(get_org_row(session, org_id))


def _user_view(session: Tx, ctx: ServiceContext, user: User, org: Organization) -> UserView:
    cert = current_certificate(session, user.login_id)
    now = ctx.clock.now()
    current = view_of(cert, ctx, now) if cert is not None and is_valid(cert, now) else None
    return UserView(
        user.login_id,
        user.org_id,
        user.role,
        user.email,
        user.display_name,
        org.login_method,
        user.created_at,
        user.updated_at,
        current,
    )


def check_role_change(ctx: ServiceContext, actor: Actor, old_role: str | None, new_role: str, ticket: str | None) -> None:
    """A master user is a paper procedure (R9): creating one, or changing a role to or from
    master, is done by the help desk (operator) citing the ticket. Otherwise a front end could
    demote a master, revoke its certificate "as" another master and issue one with its own key.
    Under dual control it also needs a second operator's approval: else one
    operator could demote a master, revoke its certificate as a general user's, and promote it again."""
    if old_role == new_role or "master" not in (old_role, new_role):
        return
    if actor.role != "operator":
        raise NotPermitted(
            "creating a master user or changing a role to or from master is a paper procedure: "
            "only the help desk (operator) does it, citing the ticket (R9)"
        )
    if not ticket or not ticket.strip():
        raise InvalidInput(
            "a master user is created or changed only on the paper procedure: give the ticket", code="ticket-required"
        )
    if old_role is None:
        what = "creating a master user (register the user as general, then ask for the change of role)"
    else:
        what = f"changing a user's role from {old_role} to {new_role}"
    require_approval(ctx, actor, what)


def put_user(
    ctx: ServiceContext,
    actor: Actor,
    login_id: str,
    *,
    org_id: str,
    role: str,
    email: str | None,
    display_name: str | None,
    ticket: str | None = None,
) -> tuple[UserView, bool]:
    if role not in USER_ROLES:
        raise InvalidInput("role must be master or general", fields={"role": "must be master or general"})
    args = (ctx, actor, login_id, org_id, role, email, display_name, ticket)
    try:
        result = _put_user(*args)
    except LoginIdTaken:  # raced another first PUT of this login ID (or a spelling of it): once more
        try:
            result = _put_user(*args)
        except LoginIdTaken:
            raise Conflict(f"login ID {login_id} is being registered concurrently; try again", code="login-id-taken") from None
    return result


def _put_user(
    ctx: ServiceContext,
    actor: Actor,
    login_id: str,
    org_id: str,
    role: str,
    email: str | None,
    display_name: str | None,
    ticket: str | None,
) -> tuple[UserView, bool]:
    now = ctx.clock.now()
    with change(ctx, actor) as uow:
        session = uow.session
        org = get_org_row(session, org_id)
        taken = users.spelling_ignoring_case(session, login_id)
        if taken is not None and taken != login_id:
            raise Conflict(
                f"login ID {login_id} is already registered as {taken}: login IDs that differ only in case are the same login ID",
                code="login-id-taken",
            )
        user = users.get_user(session, login_id, for_update=True)
        fields = {"org_id": org_id, "role": role, "email": email, "display_name": display_name}
        if user is None:
            check_role_change(ctx, actor, None, role, ticket)
            user = users.add_user(  # a concurrent first PUT of this login ID fails here (LoginIdTaken)
                session, login_id=login_id, org_id=org_id, role=role, email=email, display_name=display_name, now=now
            )
            uow.audit("user.created", target_type="user", target_id=login_id, **fields, **_ticket(role, ticket))
            created = True
        else:
            if user.org_id != org_id:
                raise Conflict(
                    f"login ID {login_id} belongs to organisation {user.org_id}; a login ID never moves to another organisation",
                    code="organization-change-refused",
                )
            check_role_change(ctx, actor, user.role, role, ticket)
            changes = {k: v for k, v in fields.items() if getattr(user, k) != v}
            old_role = user.role
            if changes:
                for k, v in changes.items():
                    setattr(user, k, v)
                user.updated_at = now
                extra = _ticket("master", ticket) if "role" in changes else {}
                uow.audit("user.updated", target_type="user", target_id=login_id, **changes, **extra)
                if "role" in changes:  # a code minted for the old role must not enrol the new one
                    enrolment_codes.void_in(uow, login_id, "role-changed")
                    events.record(
                        uow,
                        events.USER_ROLE_CHANGED,
                        login_id=login_id,
                        data={"login_id": login_id, "org_id": org_id, "role": role, "previous": old_role},
                    )
            created = False
        users.flush(session)
        view = _user_view(session, ctx, user, org)
    return view, created


def _ticket(role: str, ticket: str | None) -> dict[str, str]:
    return {"ticket": ticket.strip()} if role == "master" and ticket else {}


def get_user(ctx: ServiceContext, login_id: str) -> UserView:
    with reading(ctx.sessions) as session:
        user = users.get_user(session, login_id)
        if user is None:
            raise NotFound(f"login ID {login_id} is not registered", code="user-not-found")
        return _user_view(session, ctx, user, get_org_row(session, user.org_id))
