"""Request and response models (pydantic 2); the OpenAPI document is generated from them."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints, WithJsonSchema

from ca_service.constants import FREE_TEXT

# Free text (names, tickets): constants.FREE_TEXT (no C0/C1 controls, no bidi controls); lone
# surrogates (JSON "\ud800", not UTF-8 encodable) are refused too.
# An address the mailer can use: ASCII dot-atom local part, a DNS host name, and not a special-use
# domain (RFC 6761: .test, .local, ... never deliver); the same rule in the service and the document.
EMAIL = (
    r"^(?=[^@]{1,64}@)[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
    r"@([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+(?!(arpa|invalid|local|localhost|onion|test)$)[A-Za-z]{2,63}$"
)
PEM_CSR = r"^-----BEGIN CERTIFICATE REQUEST-----\r?\n([A-Za-z0-9+/=]{1,76}\r?\n)+-----END CERTIFICATE REQUEST-----\r?\n?$"
# (trailing line breaks allowed: a PEM file printed with an extra newline is common, and Python's
# `$` used to accept one before the full-match check below)
PEM_CERTIFICATE = r"^-----BEGIN CERTIFICATE-----\r?\n([A-Za-z0-9+/=]{1,76}\r?\n)+-----END CERTIFICATE-----(\r?\n)*$"
# RFC 3339 with a time zone; not the first or last day of the calendar (an offset there would
# leave the range of a timestamp once converted to UTC).
INSTANT = r"^(?!0000-|0001-01-01|9999-12-31)\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,6})?(Z|[+-]\d\d:\d\d)$"


def full_match(pattern: str) -> AfterValidator:
    """The value matches `pattern` as a whole. The `pattern` of StringConstraints (kept for the
    OpenAPI document, where `$` is the end of the input) runs on Python's `re` in Strict models,
    whose `$` also matches before a final newline: "alice\n" passed as a login ID.
    Every pattern of these models carries this check too."""
    compiled = re.compile(pattern)

    def check(value: str) -> str:
        if compiled.fullmatch(value) is None:
            raise ValueError("does not match the required pattern")
        return value

    return AfterValidator(check)


def _instant(value: Any) -> datetime:
    """A strict RFC 3339 instant with its time zone (never a naive or a numeric timestamp), in UTC."""
    if not isinstance(value, str) or not re.fullmatch(INSTANT, value):
        raise ValueError("must be an RFC 3339 date-time with a time zone, e.g. 2027-11-24T05:00:00Z")
    try:
        return datetime.fromisoformat(value).astimezone(UTC)
    except (ValueError, OverflowError):
        raise ValueError("not a valid date-time") from None


def _unicode_scalars(value: str) -> str:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("must not contain lone surrogates") from None
    return value


_NO_SURROGATES = AfterValidator(_unicode_scalars)
Ticket = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=100, pattern=FREE_TEXT),
    _NO_SURROGATES,
    full_match(FREE_TEXT),
]
OrgName = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=200, pattern=FREE_TEXT),
    _NO_SURROGATES,
    full_match(FREE_TEXT),
]
DisplayName = Annotated[
    str, StringConstraints(strip_whitespace=True, max_length=200, pattern=FREE_TEXT), _NO_SURROGATES, full_match(FREE_TEXT)
]


Email = Annotated[str, StringConstraints(max_length=254, pattern=EMAIL), full_match(EMAIL)]
Instant = Annotated[
    datetime,
    BeforeValidator(_instant),
    WithJsonSchema({"type": "string", "format": "date-time", "pattern": INSTANT}),
]
LOGINID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._@+-]{0,63}$"
LoginId = Annotated[str, StringConstraints(pattern=LOGINID_PATTERN), full_match(LOGINID_PATTERN)]
ORGID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
OrgId = Annotated[str, StringConstraints(pattern=ORGID_PATTERN), full_match(ORGID_PATTERN)]
SERIAL_PATTERN = r"^[0-9A-Fa-f:]{1,64}$"
Serial = Annotated[str, StringConstraints(pattern=SERIAL_PATTERN), full_match(SERIAL_PATTERN)]
LoginMethod = Literal["id_password", "certificate"]
ReasonName = Literal[
    "unspecified", "key_compromise", "affiliation_changed", "superseded", "cessation_of_operation", "privilege_withdrawn"
]
# What a caller may ask for (pki.reasons.CALLER_REASONS): `superseded` is the renewal's own reason.
CallerReason = Literal["unspecified", "key_compromise", "affiliation_changed", "cessation_of_operation", "privilege_withdrawn"]
CA_NAME = r"^[a-z0-9-]{1,64}$"
# The pattern is documented, not enforced by the model: anything else is the service's 400 invalid-csr.
CsrPem = Annotated[
    str,
    StringConstraints(min_length=1, max_length=16384),
    WithJsonSchema({"type": "string", "minLength": 1, "maxLength": 16384, "pattern": PEM_CSR}),
]
CertificatePem = Annotated[str, StringConstraints(max_length=16384, pattern=PEM_CERTIFICATE), full_match(PEM_CERTIFICATE)]
# The opaque cursor a page returns as next_cursor (see services.certificates.views).
CURSOR_PATTERN = r"^c1[0-9a-f]{1,15}$"
Cursor = Annotated[str, StringConstraints(pattern=CURSOR_PATTERN), full_match(CURSOR_PATTERN)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", regex_engine="python-re")


class Problem(BaseModel):
    """RFC 9457 problem details."""

    type: str
    title: str
    status: int
    detail: str
    code: str
    errors: list[dict[str, str]] | None = None


# --- paths and queries ---------------------------------------------------------------------
class OrgPath(BaseModel):
    org_id: OrgId


class LoginPath(BaseModel):
    login_id: LoginId


class SerialPath(BaseModel):
    serial: Serial


class CaNamePath(BaseModel):
    name: Annotated[str, StringConstraints(pattern=CA_NAME), full_match(CA_NAME)]


class CertificateQuery(Strict):
    login_id: LoginId | None = None
    org_id: OrgId | None = None
    status: Literal["active", "revoked", "expired"] | None = None
    expiring_before: Instant | None = None
    limit: int = Field(100, ge=1, le=500)
    cursor: Cursor | None = None


class AuditQuery(Strict):
    after_id: int = Field(0, ge=0, le=2**62)
    limit: int = Field(100, ge=1, le=1000)


# --- bodies ----------------------------------------------------------------------------------
class OrganizationPut(Strict):
    name: OrgName
    login_method: LoginMethod | None = None


class UserPut(Strict):
    """A master user is a paper procedure (R9): with `role: master` the `ticket` is required (and a
    change from master to general needs one too, which only the stored role can tell: 400
    `ticket-required` from the service)."""

    model_config = ConfigDict(
        json_schema_extra={
            "if": {"properties": {"role": {"const": "master"}}, "required": ["role"]},
            "then": {"required": ["ticket"]},
        }
    )

    org_id: OrgId
    role: Literal["master", "general"]
    email: Email | None = None
    display_name: DisplayName | None = None
    ticket: Ticket | None = Field(
        None, description="The paper ticket: required (operator only) to create a master user or change a role to or from master"
    )


class CsrBody(Strict):
    csr: CsrPem


class RenewalBody(Strict):
    csr: CsrPem
    current_key_signature: Annotated[
        str | None,
        Field(
            max_length=2048,
            description=(
                "base64 of a signature over the new CSR's DER made with the CURRENT certificate's private key "
                "(ECDSA with SHA-256 for EC keys, RSA PKCS#1 v1.5 with SHA-256 for RSA). Required when the "
                "certificate belongs to a master user (else 403 not-permitted); checked when given for a general user."
            ),
        ),
    ] = None


# --- responses -------------------------------------------------------------------------------
class Organization(BaseModel):
    org_id: str
    name: str
    login_method: LoginMethod
    created_at: datetime
    updated_at: datetime


class Certificate(BaseModel):
    serial: str
    login_id: str
    org_id: str
    status: Literal["active", "revoked", "expired"]
    issued_at: datetime
    not_before: datetime
    not_after: datetime
    days_remaining: int | None = Field(
        description="Calendar days until not_after in CA_TIMEZONE (0 on the last day) for an active certificate; "
        "null when the certificate is revoked or expired, where a count of days means nothing"
    )
    fingerprint_sha256: str
    key_description: str
    certificate_pem: str
    renewal_of: str | None
    superseded_by: str | None
    revoked_at: datetime | None
    revocation_reason: ReasonName | None


class IssuedCertificate(Certificate):
    chain_pem: str


class User(BaseModel):
    login_id: str
    org_id: str
    role: Literal["master", "general"]
    email: str | None
    display_name: str | None
    login_method: LoginMethod
    created_at: datetime
    updated_at: datetime
    current_certificate: Certificate | None


class CertificatePage(BaseModel):
    items: list[Certificate]
    next_cursor: str | None


class AuditEvent(BaseModel):
    id: int
    occurred_at: datetime
    client_name: str | None
    acting_login_id: str | None
    action: str
    target_type: str
    target_id: str
    details: dict[str, Any]
    request_id: str | None
    chain_index: int | None
    prev_hash: str | None
    hash: str | None


class AuditPage(BaseModel):
    items: list[AuditEvent]
    next_after_id: int | None


class Health(BaseModel):
    status: Literal["ok", "unavailable"]
    checks: dict[str, str] = {}
