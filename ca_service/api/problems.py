"""RFC 9457 problem+json for every error: domain errors, HTTP errors, validation errors. The
status of each code comes from the error table (ca_service/errors.py); this module only renders."""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, Response, json
from pydantic import ValidationError
from werkzeug.exceptions import HTTPException, MethodNotAllowed

from ca_service.errors import ServiceError, status_for
from ca_service.pki.keys import KeyUnavailable
from ca_service.timefmt import with_rfc3339

PROBLEM_TYPE_BASE = "https://ca-service.invalid/problems/"
log = logging.getLogger("ca_service.api")

# werkzeug's own errors (no route, wrong method, body too large, ...): their codes, statuses from the table
_HTTP_CODES = {
    status_for(code): code
    for code in (
        "bad-request",
        "unauthenticated",
        "forbidden",
        "not-found",
        "method-not-allowed",
        "not-acceptable",
        "payload-too-large",
        "unsupported-media-type",
        "too-many-requests",
    )
}
RETRY_AFTER_SECONDS = {"database-unavailable": "5", "ca-key-unavailable": "5"}  # the key backend reconnects by itself


def problem(status: int, code: str, title: str, detail: str, **extra: Any) -> Response:
    body: dict[str, Any] = {"type": PROBLEM_TYPE_BASE + code, "title": title, "status": status, "detail": detail, "code": code}
    body.update({k: with_rfc3339(v) for k, v in extra.items() if v is not None})
    resp = Response(json.dumps(body), status=status, mimetype="application/problem+json")
    if status == 401:
        resp.headers["WWW-Authenticate"] = 'Bearer realm="ca-service"'
    return resp


def _location(loc: tuple[int | str, ...]) -> str:
    return ".".join(str(p) for p in loc) or "body"


def validation_problem(exc: ValidationError) -> Response:
    """Names each field and why; never echoes the submitted value back."""
    errors = [{"field": _location(e["loc"]), "message": e["msg"]} for e in exc.errors(include_input=False, include_url=False)]
    fields = ", ".join(dict.fromkeys(e["field"] for e in errors))
    return problem(
        status_for("validation-error"),
        "validation-error",
        "Invalid request",
        f"invalid or missing field(s): {fields}",
        errors=errors,
    )


def register(app: Flask) -> None:
    @app.errorhandler(ServiceError)
    def _service_error(exc: ServiceError) -> Response:
        extra = dict(exc.extra)
        fields = extra.pop("fields", None)
        errors = [{"field": k, "message": v} for k, v in fields.items()] if fields else None
        reason = getattr(exc, "reason", None)
        if exc.code == "database-unavailable":
            # The driver's first line only: the full error carries the statement's parameters (CSRs, audit details).
            log.warning("database unavailable: %s", reason)
        resp = problem(exc.status, exc.code, exc.title, exc.detail, errors=errors, **extra)
        retry_after = RETRY_AFTER_SECONDS.get(exc.code)
        if isinstance(extra.get("retry_after"), int):  # 429s: when to try again
            retry_after = str(extra["retry_after"])
        if retry_after is not None:
            resp.headers["Retry-After"] = retry_after
        return resp

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException) -> Response:
        if exc.response is not None and exc.response.mimetype == "application/problem+json":
            return exc.response  # type: ignore[return-value]  # already a problem (validation)
        status = exc.code or 500
        code = _HTTP_CODES.get(status, "http-error")
        detail = exc.description or ""
        if status == 404:
            detail = "no such resource"
        if status == 413:
            detail = f"request body larger than {app.config['MAX_CONTENT_LENGTH']} bytes"
        resp = problem(status, code, exc.name, detail)
        if isinstance(exc, MethodNotAllowed) and exc.valid_methods:  # RFC 9110 §15.5.6
            resp.headers["Allow"] = ", ".join(sorted(exc.valid_methods))
        return resp

    @app.errorhandler(KeyUnavailable)
    def _key_unavailable(exc: KeyUnavailable) -> Response:
        # a signing key failed mid-request (an HSM unreachable or restarting): nothing was written
        # (the transaction rolled back); the key backend reconnects by itself on a later request
        log.warning("CA key unavailable: %s", exc)
        detail = "a CA signing key is unavailable (HSM unreachable or restarting); try again shortly"
        resp = problem(status_for("ca-key-unavailable"), "ca-key-unavailable", "CA key unavailable", detail)
        resp.headers["Retry-After"] = RETRY_AFTER_SECONDS["ca-key-unavailable"]
        return resp

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception) -> Response:
        log.exception("unhandled error")
        detail = "an unexpected error occurred; it has been logged"
        return problem(status_for("internal-error"), "internal-error", "Internal error", detail)
