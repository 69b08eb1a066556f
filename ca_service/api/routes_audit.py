"""Audit trail (operators and auditors)."""

from __future__ import annotations

from flask import Response
from flask_openapi3 import APIBlueprint, Tag

from ca_service.api import schemas as s
from ca_service.api.auth import roles
from ca_service.api.openapi import SECURITY
from ca_service.api.responses import ctx, respond
from ca_service.services import audit

bp = APIBlueprint("audit", __name__, url_prefix="/v1", abp_tags=[Tag(name="audit")], abp_security=SECURITY)


@bp.get("/audit-events", responses={200: s.AuditPage})
@roles("operator", "auditor")
def list_audit_events(query: s.AuditQuery) -> Response:
    """Hash-chained audit events in id order; pass next_after_id as after_id for the next page."""
    items, next_after = audit.list_events(ctx(), after_id=query.after_id, limit=query.limit)
    return respond(s.AuditPage, {"items": items, "next_after_id": next_after})
