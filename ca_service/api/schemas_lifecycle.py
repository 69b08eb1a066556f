"""Request/response models for revocation, login-method switches, login checks, CRLs, jobs, notices."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, StringConstraints

from ca_service.api.schemas import Certificate, LoginId, LoginMethod, ReasonName, Strict, Ticket


class RevocationBody(Strict):
    reason: ReasonName
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
    login_id: LoginId
    method: LoginMethod
    certificate_pem: Annotated[str, StringConstraints(max_length=16384)] | None = None


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
    job_id: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9-]{1,64}$")]


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
    name: Annotated[str, StringConstraints(pattern=r"^[a-z0-9-]{1,64}$")]
