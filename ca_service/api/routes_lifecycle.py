"""Revocation (R9-R11), login-method switches (R2, R3) and login checks (R1, R2, R6)."""

from __future__ import annotations

from flask import Response
from flask_openapi3 import APIBlueprint, Tag

from ca_service.api import schemas as s
from ca_service.api import schemas_lifecycle as sl
from ca_service.api.auth import actor, roles
from ca_service.api.openapi import SECURITY
from ca_service.api.responses import ctx, respond
from ca_service.services.certificates import revocation
from ca_service.services.registry import login_checks, login_method

bp = APIBlueprint("lifecycle", __name__, url_prefix="/v1", abp_tags=[Tag(name="lifecycle")], abp_security=SECURITY)


@bp.post("/certificates/<serial>/revocation", responses={200: s.Certificate})
@roles("frontend", "operator")
def revoke_certificate(path: s.SerialPath, body: sl.RevocationBody) -> Response:
    """Revoke: the front end for a master user of the same organisation (general users' certificates
    only, R10); the help desk any certificate, with the ticket for a master user's (R9)."""
    view = revocation.revoke(
        ctx(),
        actor(body.acting_login_id),
        path.serial,
        reason=body.reason,
        acting_login_id=body.acting_login_id,
        ticket=body.ticket,
    )
    return respond(s.Certificate, view)


@bp.post("/organizations/<org_id>/login-method", responses={200: sl.LoginMethodSwitched})
@roles("operator")
def switch_login_method(path: s.OrgPath, body: sl.LoginMethodBody) -> Response:
    """Switch the login method on the paper procedure (ticket); to id_password revokes every valid certificate."""
    result = login_method.switch_login_method(ctx(), actor(), path.org_id, body.login_method, body.ticket)
    return respond(sl.LoginMethodSwitched, result)


@bp.post("/login-checks", responses={200: sl.LoginCheckResult})
@roles("frontend")
def check_login(body: sl.LoginCheckBody) -> Response:
    """May this login ID log in with this method (and this certificate)? With the notices to show."""
    result = login_checks.check_login(ctx(), body.login_id, body.method, body.certificate_pem)
    return respond(sl.LoginCheckResult, result)
