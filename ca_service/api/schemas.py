"""Request and response models (pydantic 2); the OpenAPI document is generated from them."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, EmailStr, Field, StringConstraints

LoginId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._@+-]{0,63}$")]
OrgId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")]
Serial = Annotated[str, StringConstraints(pattern=r"^[0-9A-Fa-f:]{1,64}$")]
Ticket = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
LoginMethod = Literal["id_password", "certificate"]
ReasonName = Literal[
    "unspecified", "key_compromise", "affiliation_changed", "superseded", "cessation_of_operation", "privilege_withdrawn"
]
CsrPem = Annotated[str, StringConstraints(min_length=1, max_length=16384)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


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
    name: Annotated[str, StringConstraints(pattern=r"^[a-z0-9-]{1,64}$")]


class CertificateQuery(Strict):
    login_id: LoginId | None = None
    org_id: OrgId | None = None
    status: Literal["active", "revoked", "expired"] | None = None
    expiring_before: datetime | None = None
    limit: int = Field(100, ge=1, le=500)
    cursor: Annotated[str, StringConstraints(max_length=200)] | None = None


class AuditQuery(Strict):
    after_id: int = Field(0, ge=0, le=2**62)
    limit: int = Field(100, ge=1, le=1000)


# --- bodies ----------------------------------------------------------------------------------
class OrganizationPut(Strict):
    name: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
    login_method: LoginMethod | None = None


class UserPut(Strict):
    org_id: OrgId
    role: Literal["master", "general"]
    email: EmailStr | None = None
    display_name: Annotated[str, StringConstraints(strip_whitespace=True, max_length=200)] | None = None


class CsrBody(Strict):
    csr: CsrPem


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
    days_remaining: int
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
