"""CRLs (operator trigger, metadata, the DER files), background job status, screen notices."""

from __future__ import annotations

import hashlib

from flask import Response, request
from flask_openapi3 import APIBlueprint, Tag

from ca_service.api import schemas as s
from ca_service.api import schemas_lifecycle as sl
from ca_service.api.auth import PUBLIC, roles
from ca_service.api.openapi import SECURITY
from ca_service.api.responses import ctx, respond
from ca_service.services.background import job_requests as jobs
from ca_service.services.crl import publication as crl_publication
from ca_service.services.notices import scan as notices

bp = APIBlueprint("publication", __name__, abp_tags=[Tag(name="publication")])

_DER_CRL = {
    200: {"description": "DER CRL", "content": {"application/pkix-crl": {"schema": {"type": "string", "format": "binary"}}}}
}


@bp.post("/v1/crl/publications", responses={202: sl.JobStatus}, security=SECURITY)
@roles("operator")
def request_publication() -> Response:
    """Queue a CRL publication now; follow it at /v1/jobs/{job_id}."""
    return respond(sl.JobStatus, jobs.enqueue_crl_publication(ctx()), 202)


@bp.get("/v1/jobs/<job_id>", responses={200: sl.JobStatus}, security=SECURITY)
@roles("operator")
def job_status(path: sl.JobPath) -> Response:
    return respond(sl.JobStatus, jobs.job_status(ctx(), path.job_id))


@bp.get("/v1/crl", responses={200: sl.CrlMetadata}, security=SECURITY)
@roles("frontend", "operator", "auditor")
def crl_metadata() -> Response:
    """The latest issuing-CA CRL: number, thisUpdate, nextUpdate, entries, URL."""
    doc = crl_publication.latest_crl(ctx(), "issuing")
    url = f"{ctx().settings.public_base_url}/crl/{doc.ca_name}.crl"
    return respond(sl.CrlMetadata, {**doc.__dict__, "url": url})


@bp.get("/crl/<name>.crl", responses=_DER_CRL)  # type: ignore[arg-type]
@roles(PUBLIC)
def crl_file(path: sl.CrlNamePath) -> Response:
    """The latest CRL in DER (`issuing`, `root`, or a CA name), cacheable until its nextUpdate."""
    doc = crl_publication.latest_crl(ctx(), path.name)
    resp = Response(doc.der, mimetype="application/pkix-crl")
    resp.set_etag(hashlib.sha256(doc.der).hexdigest()[:32])
    resp.last_modified = doc.this_update
    remaining = int((doc.next_update - ctx().clock.now()).total_seconds())
    resp.cache_control.public = True
    resp.cache_control.max_age = max(0, remaining)
    resp.expires = doc.next_update
    resp.make_conditional(request)
    return resp


@bp.get("/v1/users/<login_id>/notices", responses={200: sl.NoticeList}, security=SECURITY)
@roles("frontend")
def user_notices(path: s.LoginPath) -> Response:
    """Notices for the screen after login (R6): expiring certificates not yet renewed."""
    return respond(sl.NoticeList, {"items": notices.current_notices(ctx(), path.login_id)})
