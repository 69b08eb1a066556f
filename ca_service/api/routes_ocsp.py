"""The OCSP responder (RFC 6960 / RFC 5019): POST /ocsp and GET /ocsp/{base64 request}.

Every answer is HTTP 200 with an `application/ocsp-response` body, errors included (the OCSP
response status says malformedRequest / internalError); GET answers without a nonce carry the
RFC 5019 caching headers so an HTTP cache in front can serve them.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from datetime import datetime
from functools import lru_cache
from typing import Any

from flask import Response, request
from flask_openapi3 import APIBlueprint, Tag
from pydantic import BaseModel, Field
from werkzeug.http import http_date, is_resource_modified, quote_etag, unquote_etag

from ca_service.api.auth import PUBLIC, roles
from ca_service.api.responses import ctx
from ca_service.services.ocsp import responder as ocsp_responder

bp = APIBlueprint("ocsp", __name__, abp_tags=[Tag(name="ocsp")])

MIMETYPE = "application/ocsp-response"
_BINARY = {"schema": {"type": "string", "format": "binary"}}
_RESPONSES: dict[str | int, Any] = {
    200: {
        "description": "A DER OCSPResponse (RFC 6960), also for malformed requests (responseStatus malformedRequest)",
        "content": {MIMETYPE: _BINARY},
    }
}
_REQUEST_BODY = {
    "requestBody": {
        "required": False,  # an empty or malformed body is answered 200 malformedRequest (RFC 6960 §2.3)
        "description": "A DER OCSPRequest (RFC 6960)",
        # octet-stream too: the body is read whatever the Content-Type (generic tools send that)
        "content": {"application/ocsp-request": _BINARY, "application/octet-stream": _BINARY},
    }
}


class OcspPath(BaseModel):
    encoded: str = Field(description="The DER OCSPRequest in base64 (standard or URL-safe), percent-encoded")


def decode_get_request(encoded: str) -> bytes | None:
    """The DER request of a GET path segment (already percent-decoded by the router), or None."""
    text = "".join(encoded.split()).replace("-", "+").replace("_", "/").rstrip("=")
    text += "=" * (-len(text) % 4)
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None


@lru_cache(maxsize=4096)
def _validators(der: bytes, this_update: datetime, next_update: datetime) -> tuple[str, str, str]:
    """ETag, Last-Modified and Expires of a (pre-signed, so often repeated) response."""
    return hashlib.sha256(der).hexdigest()[:32], http_date(this_update), http_date(next_update)


def cache_headers(answer: ocsp_responder.OCSPAnswer, now: datetime, *, get: bool) -> dict[str, str]:
    """RFC 5019 caching headers for a cacheable answer to a GET before its nextUpdate, else
    no-store (a POST is never cached); written as plain strings (werkzeug's
    cache_control/make_conditional helpers cost more than signing did)."""
    if get and answer.cacheable and answer.this_update and answer.next_update:
        max_age = int((answer.next_update - now).total_seconds())
        if max_age > 0:
            etag, last_modified, expires = _validators(answer.der, answer.this_update, answer.next_update)
            return {
                "Cache-Control": f"public, no-transform, must-revalidate, max-age={max_age}",
                "Last-Modified": last_modified,
                "Expires": expires,
                "ETag": quote_etag(etag),
            }
    return {"Cache-Control": "no-store"}


def is_conditional(environ: dict[str, Any]) -> bool:
    return "HTTP_IF_NONE_MATCH" in environ or "HTTP_IF_MODIFIED_SINCE" in environ


def _http_response(answer: ocsp_responder.OCSPAnswer, *, get: bool) -> Response:
    """The answer with its caching headers when it is cacheable (GET without a nonce), or 304."""
    headers = cache_headers(answer, ctx().clock.now(), get=get)
    if "ETag" in headers and is_conditional(request.environ):
        if not is_resource_modified(request.environ, unquote_etag(headers["ETag"])[0], last_modified=answer.this_update):
            return Response(status=304, headers=headers)
    return Response(answer.der, status=200, mimetype=MIMETYPE, headers=headers)


@bp.post("/ocsp", responses=_RESPONSES, openapi_extensions=_REQUEST_BODY)
@roles(PUBLIC)
def ocsp_post() -> Response:
    """OCSP request in the body (`application/ocsp-request`)."""
    return _http_response(ocsp_responder.answer(ctx(), request.get_data()), get=False)


@bp.get("/ocsp/<path:encoded>", responses=_RESPONSES, merge_slashes=False)
@roles(PUBLIC)
def ocsp_get(path: OcspPath) -> Response:
    """OCSP request as base64 in the path (RFC 6960 appendix A.1); cacheable when it has no nonce."""
    der = decode_get_request(path.encoded)
    answer = ocsp_responder.answer(ctx(), der) if der else ocsp_responder.malformed()
    return _http_response(answer, get=True)
