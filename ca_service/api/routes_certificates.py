"""Issuance, renewal and reading certificates (DESIGN §4)."""

from __future__ import annotations

from flask import Response
from flask_openapi3 import APIBlueprint, Tag

from ca_service.api import schemas as s
from ca_service.api.auth import actor, roles
from ca_service.api.openapi import SECURITY
from ca_service.api.responses import ctx, respond
from ca_service.services.certificates import issuance
from ca_service.services.certificates import views as certificates

bp = APIBlueprint("certificates", __name__, url_prefix="/v1", abp_tags=[Tag(name="certificates")], abp_security=SECURITY)


@bp.post("/users/<login_id>/certificates", responses={201: s.IssuedCertificate})
@roles("frontend")
def issue_certificate(path: s.LoginPath, body: s.CsrBody) -> Response:
    """Issue the login ID's certificate from a PEM CSR (R1, R8, R10, R11)."""
    view, chain = issuance.issue_certificate(ctx(), actor(), path.login_id, body.csr)
    return respond(s.IssuedCertificate, view, 201, chain_pem=chain)


@bp.post("/certificates/<serial>/renewal", responses={201: s.IssuedCertificate})
@roles("frontend")
def renew_certificate(path: s.SerialPath, body: s.RenewalBody) -> Response:
    """Renew inside the renewal window (R6): successor issued, predecessor revoked as superseded.
    A master user's certificate needs `current_key_signature`, the proof of the current key (R9, Q11)."""
    proven = False
    if body.current_key_signature is not None:
        proven = issuance.prove_current_key(ctx(), path.serial, body.csr, body.current_key_signature)
    view, chain = issuance.renew_certificate(ctx(), actor(), path.serial, body.csr, key_proven=proven)
    return respond(s.IssuedCertificate, view, 201, chain_pem=chain)


@bp.get("/certificates/<serial>", responses={200: s.Certificate})
@roles("frontend", "operator", "auditor")
def get_certificate(path: s.SerialPath) -> Response:
    """Details, status (active, revoked, expired) and expiry date (R7)."""
    return respond(s.Certificate, certificates.get_certificate(ctx(), path.serial))


@bp.get("/certificates", responses={200: s.CertificatePage})
@roles("frontend", "operator", "auditor")
def list_certificates(query: s.CertificateQuery) -> Response:
    """Filter by login_id, org_id, status, expiring_before; page with limit and the opaque cursor."""
    items, next_cursor = certificates.list_certificates(ctx(), certificates.CertificateFilter(**query.model_dump()))
    return respond(s.CertificatePage, {"items": items, "next_cursor": next_cursor})
