"""Dual-control requests: the list, one request, approve (a different operator) or reject."""

from __future__ import annotations

from flask import flash, redirect, request, url_for
from flask_babel import gettext as _
from werkzeug.wrappers import Response as BaseResponse

from ca_service.console.blueprint import actor, bp, ctx, operator, page
from ca_service.services.helpdesk import approvals


@bp.route("/approvals")
def approval_list() -> tuple[str, int]:
    return page("approvals.html", items=approvals.listing(ctx(), limit=100))


@bp.route("/approvals/<int:approval_id>")
def approval(approval_id: int) -> tuple[str, int]:
    item = approvals.get(ctx(), approval_id)
    mine = item.requested_by == actor().client_name
    return page("approval.html", item=item, mine=mine, me=operator().username)


@bp.route("/approvals/<int:approval_id>/decision", methods=["POST"])
def decide(approval_id: int) -> BaseResponse:
    if request.form.get("decision") == "approve":
        item = approvals.approve(ctx(), actor(), approval_id)
        if item.status == "approved":
            flash(_("Approved. The action was carried out."))
        else:
            flash(_("Approved, but the action failed: %(outcome)s", outcome=item.outcome or ""))
    else:
        approvals.reject(ctx(), actor(), approval_id)
        flash(_("The request was rejected."))
    return redirect(url_for("console.approval", approval_id=approval_id))
