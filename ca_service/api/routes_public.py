"""Unauthenticated endpoints: CA certificates, health, readiness, the OpenAPI document."""

from __future__ import annotations

from typing import Any

from flask import Response, current_app, jsonify, request
from flask_openapi3 import APIBlueprint, Tag

from ca_service.api import schemas as s
from ca_service.api.auth import PUBLIC, roles
from ca_service.api.responses import ctx
from ca_service.services.authority import hierarchy as authorities
from ca_service.services.background import health

bp = APIBlueprint("public", __name__, abp_tags=[Tag(name="public")])

_DER_CERT: dict[str | int, Any] = {
    200: {
        "description": "DER certificate",
        "content": {"application/pkix-cert": {"schema": {"type": "string", "format": "binary"}}},
    }
}


@bp.get("/ca/<name>.crt", responses=_DER_CERT)
@roles(PUBLIC)
def ca_certificate(path: s.CaNamePath) -> Response:
    """A CA certificate in DER; `issuing` and `root` always name the active ones."""
    der, created = authorities.ca_certificate_der(ctx(), path.name)
    resp = Response(der, mimetype="application/pkix-cert")
    resp.last_modified = created
    resp.cache_control.public = True
    resp.cache_control.max_age = 3600
    resp.add_etag()
    resp.make_conditional(request)
    return resp


@bp.get("/healthz", responses={200: s.Health})
@roles(PUBLIC)
def healthz() -> Response:
    """Liveness: the process answers."""
    return jsonify({"status": "ok", "checks": {}})


@bp.get("/readyz", responses={200: s.Health, 503: s.Health})
@roles(PUBLIC)
def readyz() -> Response:
    """Readiness: database and schema, CA key; Redis is reported (the API works without it)."""
    ready, checks = health.readiness(ctx())
    resp = jsonify({"status": "ok" if ready else "unavailable", "checks": checks})
    resp.status_code = 200 if ready else 503
    return resp


@bp.get("/openapi.json", doc_ui=False)
@roles(PUBLIC)
def openapi_document() -> Response:
    return jsonify(current_app.api_doc)  # type: ignore[attr-defined]
