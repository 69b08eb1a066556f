"""The problem `code`s each operation can answer, by status: rendered into the OpenAPI document
(every error response lists its codes) so a client can rely on them (DESIGN §4)."""

from __future__ import annotations

# Every authenticated operation: 401 unauthenticated, 403 forbidden (role); every operation:
# 400 validation-error (naming each field), 404 not-found (no route), 405 method-not-allowed,
# 413 payload-too-large, 415 unsupported-media-type, 503 database-unavailable; authenticated
# ones also 429 too-many-authentication-failures (the bad-token throttle).
COMMON: dict[str, list[str]] = {
    "400": ["validation-error"],
    "401": ["unauthenticated"],
    "403": ["forbidden"],
    "404": ["not-found"],
    "413": ["payload-too-large"],
    "415": ["unsupported-media-type"],
    "429": ["too-many-authentication-failures"],  # authenticated operations only (api/auth.py)
    "503": ["database-unavailable"],
}
_CSR = ["invalid-csr", "csr-signature-invalid", "weak-signature-algorithm", "key-rejected"]
_CA = ["ca-not-initialised", "ca-key-unavailable", "serial-collision"]

BY_OPERATION: dict[tuple[str, str], dict[str, list[str]]] = {
    ("put", "/v1/organizations/{org_id}"): {"409": ["login-method-change-requires-ticket"]},
    ("get", "/v1/organizations/{org_id}"): {"404": ["organization-not-found"]},
    ("put", "/v1/users/{login_id}"): {
        "400": ["ticket-required"],
        "403": ["not-permitted"],
        "404": ["organization-not-found"],
        "409": ["organization-change-refused", "login-id-taken"],
    },
    ("get", "/v1/users/{login_id}"): {"404": ["user-not-found"]},
    ("post", "/v1/users/{login_id}/certificates"): {
        "400": _CSR,
        "404": ["user-not-found"],
        "409": ["login-method-not-certificate", "active-certificate-exists", "key-reused", "ca-rollover-required"],
        "503": _CA,
    },
    ("post", "/v1/certificates/{serial}/renewal"): {
        "400": _CSR,
        "404": ["certificate-not-found"],
        "409": [
            "renewal-not-open",
            "certificate-not-active",
            "login-method-not-certificate",
            "key-reused",
            "ca-rollover-required",
        ],
        "503": _CA,
    },
    ("get", "/v1/certificates/{serial}"): {"404": ["certificate-not-found"]},
    ("post", "/v1/certificates/{serial}/revocation"): {
        "400": ["ticket-required"],
        "403": ["not-permitted"],
        "404": ["certificate-not-found"],
        "409": ["already-revoked"],
        "429": ["revocation-limit-reached"],
    },
    ("post", "/v1/organizations/{org_id}/login-method"): {
        "400": ["ticket-required"],
        "404": ["organization-not-found"],
    },
    ("post", "/v1/crl/publications"): {"503": ["queue-unavailable"]},
    ("get", "/v1/jobs/{job_id}"): {"404": ["job-not-found"], "503": ["queue-unavailable"]},
    ("get", "/v1/crl"): {"404": ["crl-not-found"]},
    ("get", "/crl/{name}.crl"): {"404": ["crl-not-found", "ca-not-found"]},
    ("get", "/ca/{name}.crt"): {"404": ["ca-not-found"]},
    ("get", "/v1/audit-checkpoints"): {"503": ["audit-key-unavailable"]},
    # issue 23: enrolment codes and EST (DESIGN §4c)
    ("post", "/v1/users/{login_id}/enrolment-codes"): {
        "400": ["ticket-required"],
        "403": ["not-permitted"],
        "404": ["user-not-found"],
        "409": ["login-method-not-certificate"],
    },
    ("get", "/.well-known/est/cacerts"): {"503": ["ca-not-initialised"]},
    ("post", "/.well-known/est/simpleenroll"): {
        "400": _CSR,
        "401": ["unauthenticated"],
        "409": ["login-method-not-certificate", "active-certificate-exists", "key-reused", "ca-rollover-required"],
        "429": ["too-many-authentication-failures"],
        "503": _CA,
    },
    ("post", "/.well-known/est/simplereenroll"): {
        "400": _CSR,
        "401": ["unauthenticated"],
        "409": [
            "renewal-not-open",
            "certificate-not-active",
            "login-method-not-certificate",
            "key-reused",
            "ca-rollover-required",
        ],
        "503": _CA,
    },
    ("get", "/.well-known/est/renewal-info/{serial}"): {"404": ["certificate-not-found"]},
}


def codes_for(method: str, path: str, status: str) -> list[str]:
    return COMMON.get(status, []) + BY_OPERATION.get((method, path), {}).get(status, [])
