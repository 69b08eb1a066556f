"""Request/response models for revocation, login-method switches, login checks, CRLs, jobs, notices."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from ca_service.api.schemas import (
    CA_NAME,
    CallerReason,
    Certificate,
    CertificatePem,
    LoginId,
    LoginMethod,
    Strict,
    Ticket,
    full_match,
)

JOB_ID = r"^[A-Za-z0-9-]{1,64}$"


class RevocationBody(Strict):
    reason: CallerReason = Field(
        description="`superseded` is not accepted: it is the reason a renewal gives its predecessor (400 validation-error)"
    )
    acting_login_id: LoginId | None = None
    ticket: Ticket | None = None


class LoginMethodBody(Strict):
    login_method: LoginMethod
    ticket: Ticket


class LoginMethodSwitched(BaseModel):
    org_id: str
    login_method: LoginMethod
    previous_login_method: LoginMethod
    revoked: list[Certificate]


class LoginCheckBody(Strict):
    """`certificate_pem` (the PEM client certificate the PC presented) is required with
    `method: certificate` and ignored with `id_password`."""

    model_config = ConfigDict(
        json_schema_extra={
            "if": {"properties": {"method": {"const": "certificate"}}, "required": ["method"]},
            "then": {"required": ["certificate_pem"]},
        }
    )

    login_id: LoginId
    method: LoginMethod
    certificate_pem: CertificatePem | None = None

    @model_validator(mode="after")
    def _certificate_needs_pem(self) -> LoginCheckBody:
        if self.method == "certificate" and self.certificate_pem is None:
            raise ValueError("certificate_pem is required with method certificate")
        return self


class CertificateSummary(BaseModel):
    serial: str
    not_after: datetime
    days_remaining: int


class Notice(BaseModel):
    kind: Literal["certificate_expiring"]
    serial: str
    not_after: datetime
    days_remaining: int
    message_ja: str
    message_en: str
    created_at: datetime


class NoticeList(BaseModel):
    items: list[Notice]


class LoginCheckResult(BaseModel):
    allowed: bool
    reason: str | None
    certificate: CertificateSummary | None
    notices: list[Notice]


class JobPath(BaseModel):
    job_id: Annotated[str, StringConstraints(pattern=JOB_ID), full_match(JOB_ID)]


class JobStatus(BaseModel):
    job_id: str
    status: Literal["queued", "started", "finished", "failed"]
    result: dict[str, Any] | None = None
    error: str | None = None


class CrlMetadata(BaseModel):
    crl_number: int
    this_update: datetime
    next_update: datetime
    entries: int = Field(description="number of revoked certificates listed")
    url: str


class CrlNamePath(BaseModel):
    name: Annotated[str, StringConstraints(pattern=CA_NAME), full_match(CA_NAME)]
