"""OCSP requests whose pre-signed response this process holds, answered below Flask.

A cached OCSP hit costs little in the service (parse, match, LRU) and many times that in Flask and
werkzeug around it (request and response objects, URL routing, before/after hooks). Web-scale
responders serve pre-signed responses from a table in front of any framework; this middleware
does the same for the one case that needs nothing else:

- `GET /ocsp/<base64>` without conditional headers, or `POST /ocsp` with a Content-Length of at
  most MAX_BODY bytes;
- the request parses, carries no nonce, names an issuing CA held, and this process's LRU holds
  its response while the invalidation watch is live (services/ocsp/responder.presigned_answer:
  the same test the Flask view makes before it would read the database).

Then it writes exactly what the Flask view would (status, body, Content-Type, caching headers,
X-Request-ID) and counts and logs the request as the app does (instrumentation.record, with the
route label of the Flask rule). Anything else -- a miss, a nonce, garbage, a 304, HEAD, a large
or chunked body -- goes to Flask untouched (a POST body already read is handed on in a buffer).
"""

from __future__ import annotations

import io
import time
from collections.abc import Iterable
from typing import Any

from ca_service.api import instrumentation
from ca_service.api.routes_ocsp import MIMETYPE, cache_headers, decode_get_request, is_conditional
from ca_service.context import ServiceContext
from ca_service.services.ocsp.responder import OCSPAnswer, presigned_answer
from config.logging import bind as bind_log
from config.logging import log_context

GET_PREFIX = "/ocsp/"
GET_ROUTE = "/ocsp/<path:encoded>"  # the Flask rules' names, for the metrics' route label
POST_ROUTE = "/ocsp"
MAX_BODY = 8192  # an OCSPRequest for one certificate is ~100 bytes; larger ones go to Flask
_NO_SUBJECTS = {"acting_login_id": None, "serial": None}  # as instrumentation._subjects gives OCSP


class OcspFastPath:
    def __init__(self, app: Any, ctx: ServiceContext) -> None:
        self.app = app
        self.ctx = ctx

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        method = environ.get("REQUEST_METHOD")
        path: str = environ.get("PATH_INFO", "")
        started = time.perf_counter()
        if method == "GET" and path.startswith(GET_PREFIX) and not is_conditional(environ):
            der, route = decode_get_request(path[len(GET_PREFIX) :]), GET_ROUTE
        elif method == "POST" and path == POST_ROUTE:
            der, route = _read_body(environ), POST_ROUTE
        else:
            return self.app(environ, start_response)
        answer = presigned_answer(self.ctx, der) if der else None
        if answer is None:
            return self.app(environ, start_response)
        return self._respond(environ, start_response, answer, route, started)

    def _respond(
        self, environ: dict[str, Any], start_response: Any, answer: OCSPAnswer, route: str, started: float
    ) -> list[bytes]:
        request_id = instrumentation.request_id_from(environ.get("HTTP_X_REQUEST_ID", ""))
        headers = [("Content-Type", MIMETYPE), ("Content-Length", str(len(answer.der)))]
        headers += cache_headers(answer, self.ctx.clock.now(), get=route == GET_ROUTE).items()
        headers.append(("X-Request-ID", request_id))
        start_response("200 OK", headers)
        token = log_context.set({})
        try:
            bind_log(request_id=request_id)
            instrumentation.record(environ["REQUEST_METHOD"], route, 200, time.perf_counter() - started, _NO_SUBJECTS)
        finally:
            log_context.reset(token)
        return [answer.der]


def _read_body(environ: dict[str, Any]) -> bytes | None:
    """A small body, read whole and put back for Flask; None (unread) for a large or unsized one."""
    try:
        length = int(environ.get("CONTENT_LENGTH") or -1)
    except ValueError:
        return None
    if not 0 < length <= MAX_BODY or environ.get("HTTP_TRANSFER_ENCODING"):
        return None
    body: bytes = environ["wsgi.input"].read(length)
    environ["wsgi.input"] = io.BytesIO(body)
    return body
