"""Prometheus metrics, one place for every process (API, worker, scheduler).

Under gunicorn the API runs several worker processes: PROMETHEUS_MULTIPROC_DIR must be set
(`ca-service serve` does) so that /metrics sums them. Define metrics here, by area.
"""

from __future__ import annotations

from prometheus_client import Counter, Histogram

# --- HTTP ------------------------------------------------------------------------------------------
HTTP_REQUESTS = Counter("ca_http_requests_total", "HTTP requests", ["method", "route", "status"])
HTTP_LATENCY = Histogram(
    "ca_http_request_duration_seconds", "HTTP request latency", ["method", "route"],
    buckets=(0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
)  # fmt: skip

# --- issuance and lifecycle -----------------------------------------------------------------
CERTIFICATES_ISSUED = Counter("ca_certificates_issued_total", "Client certificates issued", ["kind"])  # kind: new|renewal
CERTIFICATES_REVOKED = Counter("ca_certificates_revoked_total", "Client certificates revoked", ["reason"])
# a compromised front end hitting the revocation brake (services/certificates/revocation_brake.py): alerted
REVOCATION_LIMIT_REFUSALS = Counter(
    "ca_revocation_limit_refusals_total", "Front-end revocations refused by the per-organisation hourly limit"
)
CONSOLE_PASSWORD_CHECKS = Counter("ca_console_password_checks_total", "Console login attempts whose password was hashed")
CONSOLE_LOGIN_LIMITED = Counter(
    "ca_console_login_limited_total", "Console login attempts refused before hashing", ["reason"]
)  # reason: address (too many attempts from it) | locked (the address failed too often for that username)
ISSUANCE_LIMIT_REFUSALS = Counter(
    "ca_issuance_limit_refusals_total",
    "Issuances and renewals refused by the per-organisation hourly limit",
    ["kind"],  # new or renewal
)
AUTH_THROTTLED = Counter("ca_auth_throttled_total", "Requests refused: too many bad tokens from the address")
LOGIN_CHECKS = Counter("ca_login_checks_total", "Login checks answered", ["result"])  # allowed or the refusal reason

# --- background work -------------------------------------------------------------------------
CRL_PUBLISHED = Counter("ca_crl_publications_total", "CRLs signed and published", ["ca"])
NOTICES_CREATED = Counter("ca_notices_created_total", "Expiry notices created")
NOTICE_EMAILS = Counter("ca_notice_emails_total", "Expiry notice email attempts", ["result"])  # sent|failed|no_email
# lifecycle events to the front end; outcome: delivered|retry|failed (given up after 24 h)
WEBHOOK_DELIVERIES = Counter("ca_webhook_deliveries_total", "Webhook delivery attempts", ["type", "outcome"])

# --- OCSP ----------------------------------------------------------------------------------------
OCSP_SIGNING_SECONDS = Histogram("ca_ocsp_signing_seconds", "Time to sign one OCSP response")
# status: good|revoked|unknown (certStatus) or malformedRequest|internalError (response status)
OCSP_REQUESTS = Counter("ca_ocsp_requests_total", "OCSP requests answered", ["status"])
# result: hit|miss|stale (status changed)|bypass (nonce)|error (Redis down)
OCSP_CACHE = Counter("ca_ocsp_cache_total", "OCSP response cache lookups", ["result"])

# --- enrolment (one-time codes and EST) ----------------------------------------------------------
# result: minted|rejected (a wrong, used, expired or voided code, or an unknown login ID)
ENROLMENT_CODES = Counter("ca_enrolment_codes_total", "Enrolment codes minted or rejected", ["result"])
# operation: simpleenroll|simplereenroll; outcome: issued|unauthenticated|refused (a 4xx with a problem code)|error
EST_ENROLMENTS = Counter("ca_est_enrolments_total", "EST enrolments and re-enrolments by outcome", ["operation", "outcome"])
