"""Dual control (CA_DUAL_CONTROL=true; EJBCA's "approvals"): revoking a master user's
certificate, switching an organisation's login method and changing a role to or from master
are asked for by one operator and carried out when a second, different operator
approves, within 24 hours. The approved action is the same service call as without dual control
(services/certificates/revocation.py, services/registry/login_method.py,
services/registry/organisations.py); its audit event names
both operators (Actor.requested_by) and the ticket. Those services refuse any other caller
(services/access/dual_control.py: ApprovalRequired, 409 approval-required), whatever the path."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from ca_service.constants import LoginMethod, UserRole
from ca_service.context import Actor, ServiceContext
from ca_service.errors import Conflict, InvalidInput, NotFound, NotPermitted, ServiceError
from ca_service.pki.reasons import CALLER_REASONS
from ca_service.services.access.dual_control import ApprovalRequired
from ca_service.services.audit.change import change
from ca_service.services.certificates import revocation
from ca_service.services.certificates.views import get_certificate
from ca_service.services.registry import login_method
from ca_service.services.registry import organisations as registry
from ca_service.store import certificates as certificate_rows
from ca_service.store import operators as store
from ca_service.store import users as user_rows
from ca_service.store.db import Tx, reading
from ca_service.store.models import Approval

LIFETIME = timedelta(hours=24)
REVOCATION = "revocation"
SWITCH = "login_method_switch"
ROLE = "role_change"
__all__ = ["REVOCATION", "ROLE", "SWITCH", "ApprovalRequired"]


@dataclass(frozen=True)
class ApprovalView:
    id: int
    kind: str
    target_id: str
    params: dict[str, Any]
    ticket: str
    requested_by: str
    requested_at: datetime
    expires_at: datetime
    status: str  # pending | running | approved | rejected | failed | expired (shown, never stored)
    decided_by: str | None
    decided_at: datetime | None
    outcome: str | None


def _view(row: Approval, now: datetime) -> ApprovalView:
    status = "expired" if row.status == "pending" and row.expires_at <= now else row.status
    return ApprovalView(
        row.id, row.kind, row.target_id, json.loads(row.params), row.ticket, row.requested_by, row.requested_at,
        row.expires_at, status, row.decided_by, row.decided_at, row.outcome,
    )  # fmt: skip


def revocation_needs_approval(ctx: ServiceContext, serial: str) -> bool:
    """Under dual control, a master user's certificate is revoked only on a second operator's approval."""
    if not ctx.settings.dual_control:
        return False
    owner = registry.get_user(ctx, get_certificate(ctx, serial).login_id)
    return owner.role == UserRole.MASTER


def switch_needs_approval(ctx: ServiceContext) -> bool:
    return ctx.settings.dual_control


def role_change_needs_approval(ctx: ServiceContext, old_role: str, new_role: str) -> bool:
    """Under dual control, a role change to or from master waits for a second operator."""
    return ctx.settings.dual_control and old_role != new_role and UserRole.MASTER in (old_role, new_role)


def _operator(actor: Actor) -> str:
    if actor.client_name is None:
        raise NotPermitted("an approval request needs a named operator")
    return actor.client_name


def request(ctx: ServiceContext, actor: Actor, kind: str, target_id: str, params: dict[str, Any], ticket: str) -> ApprovalView:
    """A pending request (checked as far as it can be before it runs)."""
    if not ticket or not ticket.strip():
        raise InvalidInput("the paper ticket is required", code="ticket-required", fields={"ticket": "required"})
    if kind == REVOCATION:
        if params.get("reason") not in CALLER_REASONS:
            raise InvalidInput(f"reason must be one of {', '.join(CALLER_REASONS)}", fields={"reason": "unknown reason"})
        target_id = get_certificate(ctx, target_id).serial  # NotFound for an unknown serial
    elif kind == SWITCH:
        if params.get("login_method") not in (LoginMethod.CERTIFICATE, LoginMethod.ID_PASSWORD):
            raise InvalidInput("login_method must be certificate or id_password", fields={"login_method": "unknown method"})
        registry.get_organization(ctx, target_id)  # NotFound for an unknown organisation
    elif kind == ROLE:
        user = registry.get_user(ctx, target_id)  # NotFound for an unknown login ID
        if not role_change_needs_approval(ctx, user.role, str(params.get("role"))):
            raise InvalidInput(
                f"only a change of role to or from master, to another role than {user.role}, is asked for here",
                fields={"role": "not a change to or from master"},
            )
    else:
        raise InvalidInput(f"unknown approval kind {kind!r}")
    now = ctx.clock.now()
    with change(ctx, actor) as uow:
        row = store.add_approval(
            uow.session, kind=kind, target_id=target_id, params=json.dumps(params, sort_keys=True), ticket=ticket.strip(),
            requested_by=_operator(actor), requested_at=now, expires_at=now + LIFETIME,
        )  # fmt: skip
        uow.audit("approval.requested", target_type=kind, target_id=target_id, approval_id=row.id, ticket=row.ticket, **params)
        view = _view(row, now)
    return view


def get(ctx: ServiceContext, approval_id: int) -> ApprovalView:
    with reading(ctx.sessions) as session:
        row = store.get_approval(session, approval_id)
        if row is None:
            raise NotFound(f"no approval request {approval_id}", code="approval-not-found")
        return _view(row, ctx.clock.now())


def listing(ctx: ServiceContext, *, pending_only: bool = False, limit: int = 100) -> list[ApprovalView]:
    now = ctx.clock.now()
    with reading(ctx.sessions) as session:
        rows = store.approvals(session, statuses=("pending",) if pending_only else None, limit=limit)
        views = [_view(r, now) for r in rows]
    return [v for v in views if v.status == "pending"] if pending_only else views


def _decide(ctx: ServiceContext, actor: Actor, approval_id: int, *, approving: bool) -> ApprovalView:
    pending = get(ctx, approval_id)
    if pending.status != "pending":
        raise Conflict(f"approval request {approval_id} is {pending.status}", code="approval-not-pending")
    if approving and pending.requested_by == _operator(actor):
        raise NotPermitted("a second, different operator must approve this request (dual control)", code="same-operator")
    now = ctx.clock.now()
    with change(ctx, actor) as uow:  # approving: claims the request (audited when it has run)
        session = uow.session
        if not store.claim_approval(session, approval_id, now, _operator(actor)):
            raise Conflict(f"approval request {approval_id} was decided meanwhile or has expired", code="approval-not-pending")
        row = store.get_approval(session, approval_id)
        assert row is not None
        if not approving:
            row.status, row.decided_by, row.decided_at = "rejected", _operator(actor), now
            uow.audit("approval.rejected", target_type=pending.kind, target_id=pending.target_id, approval_id=approval_id)
    if not approving:
        return get(ctx, approval_id)
    return _run(ctx, actor, pending)


def _run(ctx: ServiceContext, approver: Actor, pending: ApprovalView) -> ApprovalView:
    """Carry out the approved action as the approver on the requester's behalf; record the outcome."""
    acting = Actor(approver.client_name, approver.role, request_id=approver.request_id, requested_by=pending.requested_by)
    status, outcome = "approved", ""
    try:
        if pending.kind == REVOCATION:
            view = revocation.revoke(ctx, acting, pending.target_id, reason=pending.params["reason"], ticket=pending.ticket)
            outcome = f"revoked {view.serial} ({view.revocation_reason})"
        elif pending.kind == ROLE:
            user = registry.get_user(ctx, pending.target_id)
            registry.put_user(
                ctx, acting, user.login_id, org_id=user.org_id, role=pending.params["role"], email=user.email,
                display_name=user.display_name, ticket=pending.ticket,
            )  # fmt: skip
            outcome = f"{user.role} -> {pending.params['role']}"
        else:
            result = login_method.switch_login_method(
                ctx, acting, pending.target_id, pending.params["login_method"], pending.ticket
            )
            outcome = f"{result.previous_login_method} -> {result.login_method}; revoked {len(result.revoked)}"
    except ServiceError as err:
        status, outcome = "failed", f"{err.code}: {err.detail}"
    with change(ctx, approver) as uow:
        row = store.get_approval(uow.session, pending.id, for_update=True)
        assert row is not None
        row.status, row.decided_by, row.decided_at, row.outcome = status, approver.client_name, ctx.clock.now(), outcome
        uow.audit(
            f"approval.{status}",
            target_type=pending.kind,
            target_id=pending.target_id,
            approval_id=pending.id,
            requested_by=pending.requested_by,
            ticket=pending.ticket,
            outcome=outcome,
        )
    return get(ctx, pending.id)


def approve(ctx: ServiceContext, actor: Actor, approval_id: int) -> ApprovalView:
    return _decide(ctx, actor, approval_id, approving=True)


def reject(ctx: ServiceContext, actor: Actor, approval_id: int) -> ApprovalView:
    """The requester may withdraw their own request; anyone else may refuse it."""
    return _decide(ctx, actor, approval_id, approving=False)


INTERRUPTED_AFTER = timedelta(minutes=10)  # far past gunicorn's request timeout: no request still runs it
SWEEP = Actor(client_name="approval-sweep", role="system")


def settle_interrupted(ctx: ServiceContext) -> int:
    """An approval whose approving request died mid-action (a killed worker, a lost database
    connection) stayed `running`: nobody could approve, reject or learn its outcome. The sweep
    settles each from what the database says happened -- the certificate revoked, or the
    organisation on the requested login method: approved; else failed, to be asked again -- and
    audits it. Returns how many it settled."""
    since = ctx.clock.now() - INTERRUPTED_AFTER
    with reading(ctx.sessions) as session:  # the sweep runs every few seconds: no write transaction for nothing
        if not store.any_interrupted_approval(session, since):
            return 0
    with change(ctx, SWEEP) as uow:
        rows = store.interrupted_approvals(uow.session, since)
        for row in rows:
            done = _carried_out(uow.session, row)
            row.status = "approved" if done else "failed"
            row.outcome = (
                "carried out; recorded by the sweep after the approving request was interrupted"
                if done
                else "interrupted before the action was carried out; ask again"
            )
            uow.audit(
                f"approval.{row.status}",
                target_type=row.kind,
                target_id=row.target_id,
                approval_id=row.id,
                requested_by=row.requested_by,
                approved_by=row.decided_by,
                ticket=row.ticket,
                outcome=row.outcome,
            )
    return len(rows)


def _carried_out(session: Tx, row: Approval) -> bool:
    if row.kind == REVOCATION:
        cert = certificate_rows.by_serial(session, row.target_id)
        return cert is not None and cert.revoked_at is not None
    if row.kind == ROLE:
        user = user_rows.get_user(session, row.target_id)
        return user is not None and user.role == json.loads(row.params).get("role")
    org = user_rows.get_org(session, row.target_id)
    return org is not None and org.login_method == json.loads(row.params).get("login_method")
