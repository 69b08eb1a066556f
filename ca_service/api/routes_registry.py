"""Organisations and users (DESIGN §4)."""

from __future__ import annotations

from flask import Response
from flask_openapi3 import APIBlueprint, Tag

from ca_service.api import schemas as s
from ca_service.api.auth import actor, roles
from ca_service.api.openapi import SECURITY
from ca_service.api.responses import ctx, respond
from ca_service.services.registry import organisations as registry

bp = APIBlueprint("registry", __name__, url_prefix="/v1", abp_tags=[Tag(name="registry")], abp_security=SECURITY)


@bp.put("/organizations/<org_id>", responses={200: s.Organization, 201: s.Organization})
@roles("operator")
def put_organization(path: s.OrgPath, body: s.OrganizationPut) -> Response:
    """Create an organisation (optional initial login_method) or rename it."""
    view, created = registry.put_organization(ctx(), actor(), path.org_id, body.name, body.login_method)
    return respond(s.Organization, view, 201 if created else 200)


@bp.get("/organizations/<org_id>", responses={200: s.Organization})
@roles("frontend", "operator")
def get_organization(path: s.OrgPath) -> Response:
    return respond(s.Organization, registry.get_organization(ctx(), path.org_id))


@bp.put("/users/<login_id>", responses={200: s.User, 201: s.User})
@roles("frontend", "operator")
def put_user(path: s.LoginPath, body: s.UserPut) -> Response:
    """Create or update a login ID; it never moves to another organisation. A master user is a
    paper procedure: creating one, or changing a role to or from master, is operator-only with a ticket."""
    view, created = registry.put_user(
        ctx(),
        actor(),
        path.login_id,
        org_id=body.org_id,
        role=body.role,
        email=body.email,
        display_name=body.display_name,
        ticket=body.ticket,
    )
    return respond(s.User, view, 201 if created else 200)


@bp.get("/users/<login_id>", responses={200: s.User})
@roles("frontend", "operator")
def get_user(path: s.LoginPath) -> Response:
    """The user, its organisation's login_method, and its current valid certificate or null."""
    return respond(s.User, registry.get_user(ctx(), path.login_id))
