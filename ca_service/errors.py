"""Domain errors and the one table of problem codes.

Each error carries the machine-readable `code` of the API contract (DESIGN §4) and its kind (the
class). A kind owns its HTTP status (`status`), so the status of an error is decided here, once,
as Boulder maps its error types to problems once: the API renders problem+json with it
(api/problems.py), the console shows its error pages with it, and the OpenAPI document lists each
operation's codes under it (api/problem_codes.py). `PROBLEMS` names the kind of every code the
service answers; tests/test_problem_table.py fails when a code is raised with another kind, or
raised without being in the table, or listed without being raised."""

from __future__ import annotations

from typing import Any


class ServiceError(Exception):
    status = 400
    code = "bad-request"
    title = "Bad request"

    def __init__(self, detail: str, *, code: str | None = None, **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        if code is not None:
            self.code = code
        self.extra = extra


class InvalidInput(ServiceError):
    code = "validation-error"
    title = "Invalid request"


class Unauthenticated(ServiceError):
    """No credentials, or credentials that prove nothing (an unknown token, a wrong code)."""

    status = 401
    code = "unauthenticated"
    title = "Authentication required"


class NotPermitted(ServiceError):
    status = 403
    code = "not-permitted"
    title = "Not permitted by the bank's rules"


class NotFound(ServiceError):
    status = 404
    code = "not-found"
    title = "Not found"


class Conflict(ServiceError):
    status = 409
    code = "conflict"
    title = "Conflict"


class UnsupportedMediaType(ServiceError):
    """A request body in a format the endpoint does not take (the title stays the generic one)."""

    status = 415
    code = "unsupported-media-type"


class TooManyRequests(ServiceError):
    """A limit was reached; `retry_after` (seconds) in `extra` says when to try again."""

    status = 429
    code = "too-many-requests"
    title = "Too many requests"


class Unavailable(ServiceError):
    """Retryable, or waiting for an operator (CA not initialised, key unavailable, queue down,
    the issuing CA due for a rollover): nothing the client can change in its request."""

    status = 503
    code = "unavailable"
    title = "Service unavailable"


# Every problem code the service answers, by kind (and so by status); each kind's own code first.
# A code raised with a kind of another status, or a new code missing here, fails
# tests/test_problem_table.py.
_CODES_BY_KIND: dict[type[ServiceError], tuple[str, ...]] = {
    ServiceError: (),
    InvalidInput: ("ticket-required", "invalid-csr", "csr-signature-invalid", "weak-signature-algorithm", "key-rejected"),
    Unauthenticated: ("login-refused",),
    NotPermitted: ("forbidden", "same-operator"),
    NotFound: (
        "organization-not-found",
        "user-not-found",
        "certificate-not-found",
        "crl-not-found",
        "job-not-found",
        "ca-not-found",
        "client-not-found",
        "operator-not-found",
        "approval-not-found",
        "notice-not-found",
        "delivery-not-found",
    ),
    Conflict: (
        "approval-required",
        "active-certificate-exists",
        "renewal-not-open",
        "certificate-not-active",
        "login-method-not-certificate",
        "key-reused",
        "already-revoked",
        "organization-change-refused",
        "login-id-taken",
        "login-method-change-requires-ticket",
        "client-exists",
        "client-disabled",
        "operator-exists",
        "approval-not-pending",
        "notice-not-failed",
        "delivery-not-failed",
        "job-not-requeueable",
    ),
    UnsupportedMediaType: (),
    TooManyRequests: (
        "too-many-authentication-failures",
        "revocation-limit-reached",
        "issuance-limit-reached",
        "operator-locked",
        "login-attempts-limited",
    ),
    Unavailable: (
        "database-unavailable",
        "queue-unavailable",
        "ca-not-initialised",
        "ca-key-unavailable",
        "ca-rollover-required",
        "ca-expired",
        "audit-key-unavailable",
        "audit-sink-unavailable",
        "serial-collision",
        "console-not-configured",
    ),
}


def _table() -> dict[str, type[ServiceError]]:
    table: dict[str, type[ServiceError]] = {}
    for kind, codes in _CODES_BY_KIND.items():
        for code in (kind.code, *codes):
            if code in table:
                raise ValueError(f"problem code {code!r} listed under {table[code].__name__} and {kind.__name__}")
            table[code] = kind
    return table


PROBLEMS: dict[str, type[ServiceError]] = _table()

# Codes only the web layer answers, for requests that reach no service (werkzeug's own errors).
HTTP_ONLY: dict[str, int] = {
    "method-not-allowed": 405,
    "not-acceptable": 406,
    "payload-too-large": 413,
    "internal-error": 500,
}


def status_for(code: str) -> int:
    """The HTTP status a problem code is answered with; KeyError for a code not in the table."""
    kind = PROBLEMS.get(code)
    return kind.status if kind is not None else HTTP_ONLY[code]
