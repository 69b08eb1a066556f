"""A user's one-time enrolment codes (DESIGN §4c): the user page lists the outstanding ones (when
minted, by whom, until when, wrong attempts: never the code) and voids them; the help desk mints
one, for a master user on the paper procedure with the ticket (R9, Q11: after the master's
certificate was revoked, the master re-installs with the code the help desk gives). The same
service calls as `POST /v1/users/{login_id}/enrolment-codes`, audited under console:<username>.
The minted code is shown once, on the answer to the POST (no redirect: never in a URL, the
session or a flash message; the console's pages are Cache-Control: no-store)."""

from __future__ import annotations

from flask import flash, redirect, request, url_for
from flask_babel import gettext as _
from flask_babel import ngettext
from werkzeug.wrappers import Response as BaseResponse

from ca_service.console.blueprint import actor, bp, ctx, page
from ca_service.console.messages import error_text
from ca_service.constants import UserRole
from ca_service.errors import InvalidInput
from ca_service.services.enrolment import codes
from ca_service.services.registry import organisations as registry


def outstanding(login_id: str) -> list[codes.CodeView]:
    """The user's codes that still work (open: not used, voided or expired), for the user page."""
    return [c for c in codes.list_codes(ctx(), login_id) if c.status == "open"]


@bp.route("/users/<login_id>/enrolment-code", methods=["GET", "POST"])
def mint_code(login_id: str) -> tuple[str, int]:
    user = registry.get_user(ctx(), login_id)
    master = user.role == UserRole.MASTER
    if request.method == "GET":
        return page("enrolment_code.html", u=user, master=master, ticket="")
    ticket = request.form.get("ticket", "").strip()
    if master and not ticket:
        problems = {"ticket": _("Enter the paper ticket number.")}
        return page("enrolment_code.html", 400, u=user, master=master, ticket=ticket, problems=problems)
    try:
        minted = codes.mint(ctx(), actor(), user.login_id, ticket or None)
    except InvalidInput as refused:
        if refused.code != "ticket-required":
            raise
        problems = {"ticket": error_text(refused)}
        return page("enrolment_code.html", 400, u=user, master=master, ticket=ticket, problems=problems)
    return page("enrolment_code_minted.html", u=user, minted=minted, ticket=ticket)


@bp.route("/users/<login_id>/enrolment-codes/void", methods=["POST"])
def void_codes(login_id: str) -> BaseResponse:
    user = registry.get_user(ctx(), login_id)
    voided = codes.void_codes(ctx(), actor(), user.login_id)
    flash(ngettext("%(num)d enrolment code was voided.", "%(num)d enrolment codes were voided.", voided))
    return redirect(url_for("console.user", login_id=user.login_id))
