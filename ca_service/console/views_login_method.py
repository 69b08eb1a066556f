"""Switching an organisation's login method (login_method, ticket): the certificates the switch
will revoke are listed before the operator confirms; under dual control a second operator approves."""

from __future__ import annotations

from typing import Any

from flask import flash, redirect, request, url_for
from flask_babel import gettext as _
from werkzeug.wrappers import Response as BaseResponse

from ca_service.console.blueprint import actor, bp, ctx, page, paper_change_form
from ca_service.services.helpdesk import approvals
from ca_service.services.registry import login_method
from ca_service.services.registry import organisations as registry

METHODS = ("certificate", "id_password")


@bp.route("/organizations/<org_id>/login-method", methods=["GET", "POST"])
def switch_login_method(org_id: str) -> tuple[str, int] | BaseResponse:
    org = registry.get_organization(ctx(), org_id)
    dual = approvals.switch_needs_approval(ctx())
    values: dict[str, Any] = {"org": org, "methods": METHODS, "dual": dual}
    if request.method == "GET":
        return page("login_method.html", login_method="", ticket="", **values)
    method, ticket, problems = paper_change_form(
        "login_method",
        METHODS,
        org.login_method,
        _("Choose the login method."),
        _("The organisation already uses this login method."),
    )
    if problems:
        return page("login_method.html", 400, login_method=method, ticket=ticket, problems=problems, **values)
    if request.form.get("confirmed") != "yes":
        revoked = login_method.certificates_to_revoke(ctx(), org.org_id, method)
        return page("login_method_confirm.html", login_method=method, ticket=ticket, revoked=revoked, **values)
    if dual:
        params = {"login_method": method}
        pending = approvals.request(ctx(), actor(), approvals.SWITCH, org.org_id, params, ticket)
        flash(_("Login method switch requested. A second operator must approve it within 24 hours."))
        return redirect(url_for("console.approval", approval_id=pending.id))
    result = login_method.switch_login_method(ctx(), actor(), org.org_id, method, ticket)
    flash(_("The login method was switched; %(count)d certificates were revoked.", count=len(result.revoked)))
    return redirect(url_for("console.organization", org_id=org.org_id))
