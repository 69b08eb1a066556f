"""The problem `code`s each operation can answer: rendered into the OpenAPI document (every error
response lists its codes) so a client can rely on them (DESIGN §4). This module says only which
codes an operation answers; the status each is listed under is the one it is served with, from
the error table (ca_service/errors.py)."""

from __future__ import annotations

from ca_service.errors import status_for

# Every operation: 400 validation-error (naming each field), 404 not-found (no route), 413
# payload-too-large, 415 unsupported-media-type, 503 database-unavailable; authenticated ones also
# 401 unauthenticated, 403 forbidden (role) and 429 too-many-authentication-failures (the
# bad-token throttle, api/auth.py): openapi.py lists those three only where an operation has a
# security scheme.
COMMON: tuple[str, ...] = (
    "validation-error",
    "unauthenticated",
    "forbidden",
    "not-found",
    "payload-too-large",
    "unsupported-media-type",
    "too-many-authentication-failures",
    "database-unavailable",
)
_CSR = ("invalid-csr", "csr-signature-invalid", "weak-signature-algorithm", "key-rejected")
# Every new certificate: a fresh key and an issuing CA that can sign it, outlives it and draws a free serial.
_SIGNING = ("key-reused", "ca-rollover-required", "ca-not-initialised", "ca-key-unavailable", "serial-collision")
_ISSUANCE = (*_CSR, "login-method-not-certificate", "active-certificate-exists", *_SIGNING)
_RENEWAL = (*_CSR, "renewal-not-open", "certificate-not-active", "login-method-not-certificate", *_SIGNING)

BY_OPERATION: dict[tuple[str, str], tuple[str, ...]] = {
    ("put", "/v1/organizations/{org_id}"): ("login-method-change-requires-ticket",),
    ("get", "/v1/organizations/{org_id}"): ("organization-not-found",),
    ("put", "/v1/users/{login_id}"): (
        "ticket-required",
        "not-permitted",
        "organization-not-found",
        "organization-change-refused",
        "login-id-taken",
        "approval-required",
    ),
    ("get", "/v1/users/{login_id}"): ("user-not-found",),
    ("post", "/v1/users/{login_id}/certificates"): (
        *_ISSUANCE,
        "not-permitted",
        "user-not-found",
        "issuance-limit-reached",
    ),
    ("post", "/v1/certificates/{serial}/renewal"): (
        *_RENEWAL,
        "not-permitted",
        "certificate-not-found",
        "issuance-limit-reached",
    ),
    ("get", "/v1/certificates/{serial}"): ("certificate-not-found",),
    ("post", "/v1/certificates/{serial}/revocation"): (
        "ticket-required",
        "not-permitted",
        "certificate-not-found",
        "already-revoked",
        "approval-required",
        "revocation-limit-reached",
    ),
    ("post", "/v1/organizations/{org_id}/login-method"): ("ticket-required", "organization-not-found", "approval-required"),
    ("post", "/v1/crl/publications"): ("queue-unavailable",),
    ("get", "/v1/jobs/{job_id}"): ("job-not-found", "queue-unavailable"),
    ("get", "/v1/crl"): ("crl-not-found",),
    ("get", "/crl/{name}.crl"): ("crl-not-found", "ca-not-found"),
    ("get", "/ca/{name}.crt"): ("ca-not-found",),
    ("get", "/v1/audit-checkpoints"): ("audit-key-unavailable",),
    # enrolment codes and EST (DESIGN §4c)
    ("post", "/v1/users/{login_id}/enrolment-codes"): (
        "ticket-required",
        "not-permitted",
        "user-not-found",
        "login-method-not-certificate",
    ),
    ("get", "/.well-known/est/cacerts"): ("ca-not-initialised",),
    ("post", "/.well-known/est/simpleenroll"): (*_ISSUANCE, "unauthenticated", "too-many-authentication-failures"),
    ("post", "/.well-known/est/simplereenroll"): (*_RENEWAL, "unauthenticated"),
    ("get", "/.well-known/est/renewal-info/{serial}"): ("certificate-not-found",),
}


def codes_for(method: str, path: str, status: str) -> list[str]:
    """The codes an operation answers with this status: the common ones, then its own."""
    codes = (*COMMON, *BY_OPERATION.get((method, path), ()))
    return list(dict.fromkeys(code for code in codes if str(status_for(code)) == status))


def statuses_of(method: str, path: str) -> set[str]:
    """The statuses of the operation's own codes (beyond the common ones)."""
    return {str(status_for(code)) for code in BY_OPERATION.get((method, path), ())}
