"""A certificate: details, PEM download, revocation (reason, ticket, a confirmation step; under
dual control a master user's certificate goes to a second operator's approval)."""

from __future__ import annotations

from typing import Any

from flask import Response, flash, redirect, request, url_for
from flask_babel import gettext as _
from werkzeug.wrappers import Response as BaseResponse

from ca_service.console.blueprint import actor, bp, ctx, page
from ca_service.console.messages import ERRORS, error_text
from ca_service.errors import InvalidInput
from ca_service.pki.reasons import CALLER_REASONS
from ca_service.services.certificates import revocation
from ca_service.services.helpdesk import approvals
from ca_service.services.helpdesk import lookups as helpdesk
from ca_service.services.registry import organisations as registry

CHOOSABLE = CALLER_REASONS  # superseded is the renewal's own reason, never chosen by hand


@bp.route("/certificates/<serial>")
def certificate(serial: str) -> tuple[str, int]:
    detail = helpdesk.certificate_detail(ctx(), serial)
    return page("certificate.html", detail=detail, cert=detail.certificate)


@bp.route("/certificates/<serial>.pem")
def certificate_pem(serial: str) -> Response:
    cert = helpdesk.certificate_detail(ctx(), serial).certificate
    return Response(
        cert.certificate_pem,
        mimetype="application/x-pem-file",
        headers={"Content-Disposition": f'attachment; filename="{cert.serial}.pem"'},
    )


@bp.route("/certificates/<serial>/revoke", methods=["GET", "POST"])
def revoke(serial: str) -> tuple[str, int] | BaseResponse:
    detail = helpdesk.certificate_detail(ctx(), serial)
    cert = detail.certificate
    if cert.revoked_at is not None:  # nothing to offer: the certificate page says when and why
        flash(str(ERRORS["already-revoked"]))
        return redirect(url_for("console.certificate", serial=cert.serial))
    dual = approvals.revocation_needs_approval(ctx(), cert.serial)
    holder, org = registry.get_user(ctx(), cert.login_id), registry.get_organization(ctx(), cert.org_id)
    values: dict[str, Any] = {"cert": cert, "reasons": CHOOSABLE, "dual": dual, "holder": holder, "org": org}
    if request.method == "GET":
        return page("revoke.html", reason="", ticket="", **values)
    reason, ticket = request.form.get("reason", ""), request.form.get("ticket", "").strip()
    problems = {}
    if reason not in CHOOSABLE:
        problems["reason"] = _("Choose the reason.")
    if dual and not ticket:
        problems["ticket"] = _("Enter the paper ticket number.")
    if problems:
        return page("revoke.html", 400, reason=reason, ticket=ticket, problems=problems, **values)
    if request.form.get("confirmed") != "yes":
        return page("revoke_confirm.html", reason=reason, ticket=ticket, **values)
    if dual:
        pending = approvals.request(ctx(), actor(), approvals.REVOCATION, cert.serial, {"reason": reason}, ticket)
        flash(_("Revocation requested. A second operator must approve it within 24 hours."))
        return redirect(url_for("console.approval", approval_id=pending.id))
    try:
        view = revocation.revoke(ctx(), actor(), cert.serial, reason=reason, ticket=ticket or None)
    except InvalidInput as refused:  # a master user's certificate without the ticket (R9)
        if refused.code != "ticket-required":
            raise
        return page("revoke.html", 400, reason=reason, ticket=ticket, problems={"ticket": error_text(refused)}, **values)
    if holder.role == "master":
        flash(
            _(
                "The master user's certificate %(serial)s was revoked. A CRL publication is queued. Next, the master "
                "user installs a new one from the 電子証明書発行 (issue a certificate) button on the login page, with "
                "the code from the paper procedure.",
                serial=view.serial,
            )
        )
    else:
        flash(_("The certificate %(serial)s was revoked. A CRL publication is queued.", serial=view.serial))
    return redirect(url_for("console.certificate", serial=view.serial))
