"""A user's role (R9: a master user is a paper procedure): the help desk makes a user master, or a
master general, citing the paper ticket, through the same registry service as
`PUT /v1/users/{login_id}` (audited `user.updated` with the ticket, under console:<username>).
A new master is registered by the front end as a general user, then made master here. Under dual
control the change waits for a second operator's approval (the service refuses it otherwise)."""

from __future__ import annotations

from typing import Any

from flask import flash, redirect, request, url_for
from flask_babel import gettext as _
from werkzeug.wrappers import Response as BaseResponse

from ca_service.console.blueprint import actor, bp, ctx, page, paper_change_form
from ca_service.services.helpdesk import approvals
from ca_service.services.registry import organisations as registry
from ca_service.services.registry.organisations import USER_ROLES


@bp.route("/users/<login_id>/role", methods=["GET", "POST"])
def change_role(login_id: str) -> tuple[str, int] | BaseResponse:
    user = registry.get_user(ctx(), login_id)
    values: dict[str, Any] = {"u": user, "roles": USER_ROLES}
    if request.method == "GET":
        return page("role.html", role="", ticket="", **values)
    role, ticket, problems = paper_change_form(
        "role", USER_ROLES, user.role, _("Choose the role."), _("The user already has this role.")
    )
    if problems:
        return page("role.html", 400, role=role, ticket=ticket, problems=problems, **values)
    if approvals.role_change_needs_approval(ctx(), user.role, role):
        pending = approvals.request(ctx(), actor(), approvals.ROLE, user.login_id, {"role": role}, ticket)
        flash(_("Role change requested. A second operator must approve it within 24 hours."))
        return redirect(url_for("console.approval", approval_id=pending.id))
    registry.put_user(
        ctx(),
        actor(),
        user.login_id,
        org_id=user.org_id,
        role=role,
        email=user.email,
        display_name=user.display_name,
        ticket=ticket,
    )
    flash(_("The role of %(login_id)s was changed.", login_id=user.login_id))
    return redirect(url_for("console.user", login_id=user.login_id))
