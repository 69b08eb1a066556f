"""Audit trail (operators and auditors)."""

from __future__ import annotations

from flask import Response
from flask_openapi3 import APIBlueprint, Tag

from ca_service.api import schemas as s
from ca_service.api import schemas_audit as sa
from ca_service.api.auth import roles
from ca_service.api.openapi import SECURITY
from ca_service.api.responses import ctx, respond
from ca_service.services.audit import checkpoints as audit_checkpoints
from ca_service.services.audit import trail as audit

bp = APIBlueprint("audit", __name__, url_prefix="/v1", abp_tags=[Tag(name="audit")], abp_security=SECURITY)


@bp.get("/audit-events", responses={200: s.AuditPage})
@roles("operator", "auditor")
def list_audit_events(query: s.AuditQuery) -> Response:
    """Hash-chained audit events in id order; pass next_after_id as after_id for the next page."""
    items, next_after = audit.list_events(ctx(), after_id=query.after_id, limit=query.limit)
    return respond(s.AuditPage, {"items": items, "next_after_id": next_after})


@bp.get("/audit-checkpoints", responses={200: sa.AuditCheckpointPage})
@roles("operator", "auditor")
def list_audit_checkpoints(query: sa.CheckpointQuery) -> Response:
    """Signed checkpoints of the chain head, newest first, with the audit key's public key to verify
    them (`ca-service audit verify --checkpoint FILE` takes one item saved as JSON)."""
    items = audit_checkpoints.newest_first(ctx(), limit=query.limit + 1, before_seq=query.before_seq)
    next_before = items[query.limit - 1]["seq"] if len(items) > query.limit else None
    page = {"items": items[: query.limit], "next_before_seq": next_before, "keys": audit_checkpoints.public_keys(ctx())}
    return respond(sa.AuditCheckpointPage, page)
