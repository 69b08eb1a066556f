"""Search (`q` on /console/), the organisation page and the user page."""

from __future__ import annotations

from flask import request

from ca_service.console import audit_words
from ca_service.console.blueprint import bp, ctx, page
from ca_service.console.views_codes import outstanding
from ca_service.services.helpdesk import approvals
from ca_service.services.helpdesk import lookups as helpdesk
from ca_service.services.helpdesk import pages as helpdesk_pages


@bp.route("/")
def index() -> tuple[str, int]:
    q = request.args.get("q", "").strip()
    found = helpdesk.search(ctx(), q, limit=50) if q else None
    pending = approvals.listing(ctx(), pending_only=True, limit=20)
    return page("search.html", q=q, found=found, pending=pending)


@bp.route("/organizations/<org_id>")
def organization(org_id: str) -> tuple[str, int]:
    return page("organization.html", view=helpdesk_pages.organization(ctx(), org_id))


@bp.route("/users/<login_id>")
def user(login_id: str) -> tuple[str, int]:
    view = helpdesk_pages.user(ctx(), login_id)
    return page("user.html", view=view, codes=outstanding(view.user.login_id), who=audit_words.actors(ctx(), view.events))
