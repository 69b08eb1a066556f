"""Enrolment codes and the EST endpoints (RFC 7030; DESIGN §4c).

`POST /v1/users/{login_id}/enrolment-codes` is an ordinary bearer-authenticated JSON endpoint.
Under `/.well-known/est/` the bodies are base64 (one line out; base64, PEM or DER in: pki/est.py),
simpleenroll authenticates with HTTP Basic `login_id:code` (wrong credentials count in the
bad-token throttle, per address), simplereenroll with the client certificate nginx forwards in
X-SSL-Client-Cert (api/proxy.py drops that header unless the peer is in CA_TRUSTED_PROXIES).
Every 401 here asks for Basic credentials; errors are problem+json with the §4 codes.
"""

from __future__ import annotations

from typing import Any

from flask import Response, g, request
from flask_openapi3 import APIBlueprint, Tag

from ca_service.api import schemas as s
from ca_service.api import schemas_enrolment as se
from ca_service.api.auth import PUBLIC, TooManyFailures, actor, roles
from ca_service.api.openapi import SECURITY
from ca_service.api.responses import ctx, respond
from ca_service.services.access import throttle as auth_throttle
from ca_service.services.enrolment import codes
from ca_service.services.est import enrolment as est

bp = APIBlueprint("enrolment_codes", __name__, url_prefix="/v1", abp_tags=[Tag(name="enrolment")], abp_security=SECURITY)
est_bp = APIBlueprint("est", __name__, url_prefix="/.well-known/est", abp_tags=[Tag(name="est")])

CLIENT_CERT_HEADER = "X-SSL-Client-Cert"
BASIC_REALM = 'Basic realm="ca-service EST"'
PKCS7_CERTS_ONLY = "application/pkcs7-mime; smime-type=certs-only"


@bp.post("/users/<login_id>/enrolment-codes", responses={201: se.EnrolmentCode})
@roles("frontend", "operator")
def mint_enrolment_code(path: s.LoginPath, body: se.EnrolmentCodeBody) -> Response:
    """A one-time enrolment code for EST simpleenroll (DESIGN §4c): 16 Crockford base32 characters,
    valid CA_ENROLMENT_CODE_MINUTES, used once; voids the user's older codes. A master user's code
    after a revocation of its certificate: operator with a ticket only."""
    minted = codes.mint(ctx(), actor(), path.login_id, body.ticket)
    return respond(se.EnrolmentCode, minted, 201)


def _base64_response(der: bytes, content_type: str) -> Response:
    resp = Response(est.pki_est.base64_body(der), status=200, content_type=content_type)
    resp.headers["Content-Transfer-Encoding"] = "base64"
    return resp


_PKCS7: dict[str | int, Any] = {
    200: {"description": "base64 DER PKCS#7 certs-only", "content": {PKCS7_CERTS_ONLY: {"schema": {"type": "string"}}}}
}
_CSRATTRS: dict[str | int, Any] = {
    200: {"description": "base64 DER CsrAttrs", "content": {"application/csrattrs": {"schema": {"type": "string"}}}}
}


@est_bp.get("/cacerts", responses=_PKCS7)
@roles(PUBLIC)
def cacerts() -> Response:
    """The issuing CA(s) still valid and the root, as a certs-only PKCS#7 (RFC 7030 §4.1)."""
    resp = _base64_response(est.ca_certificates(ctx()), "application/pkcs7-mime")
    resp.cache_control.public = True
    resp.cache_control.max_age = 3600
    return resp


@est_bp.get("/csrattrs", responses=_CSRATTRS)
@roles(PUBLIC)
def csrattrs() -> Response:
    """The key types accepted, P-256 first (RFC 7030 §4.5)."""
    return _base64_response(est.csr_attributes(), "application/csrattrs")


def _basic_credentials() -> tuple[str, str]:
    """The Basic `login_id:code`; a request without them is refused before any lookup."""
    auth = request.authorization
    if auth is None or auth.type != "basic" or not auth.username or auth.password is None:
        raise codes.EnrolmentUnauthenticated("send Authorization: Basic with your login ID and enrolment code")
    return auth.username, auth.password


@est_bp.post("/simpleenroll", responses=_PKCS7, security=[{"estBasic": []}])
@roles(PUBLIC)
def simpleenroll() -> Response:
    """Enrol with the one-time code: `Authorization: Basic login_id:code`, body the base64 PKCS#10."""
    context = ctx()
    address = request.remote_addr or "unknown"
    login_id, code = _basic_credentials()
    wait = auth_throttle.blocked_for(context, address)
    if wait is not None:
        raise TooManyFailures("too many failed enrolments from this address; try again later", retry_after=wait)
    try:
        der = est.simple_enroll(context, login_id, code, request.get_data(), g.get("request_id"))
    except codes.EnrolmentUnauthenticated:
        wait = auth_throttle.note_failure(context, address)
        if wait is not None:
            raise TooManyFailures("too many failed enrolments from this address; try again later", retry_after=wait) from None
        raise
    return _base64_response(der, PKCS7_CERTS_ONLY)


@est_bp.post("/simplereenroll", responses=_PKCS7, security=[{"estClientCertificate": []}])
@roles(PUBLIC)
def simplereenroll() -> Response:
    """Re-enrol inside the renewal window with the current certificate (TLS client authentication
    at nginx, forwarded as X-SSL-Client-Cert from a trusted proxy); body the base64 PKCS#10 of a new key."""
    header = request.headers.get(CLIENT_CERT_HEADER)
    der = est.simple_reenroll(ctx(), header, request.get_data(), g.get("request_id"))
    return _base64_response(der, PKCS7_CERTS_ONLY)


@est_bp.get("/renewal-info/<serial>", responses={200: se.RenewalInfo})
@roles(PUBLIC)
def renewal_info(path: s.SerialPath) -> Response:
    """When to renew (RFC 9773's shape): from the renewal window's opening to a day before expiry."""
    info = est.renewal_info(ctx(), path.serial)
    body = {"suggestedWindow": {"start": info.start, "end": info.end}, "explanationURL": None}
    return respond(se.RenewalInfo, body)


@est_bp.after_request
def _basic_challenge(resp: Response) -> Response:
    if resp.status_code == 401:
        resp.headers["WWW-Authenticate"] = BASIC_REALM
    return resp
