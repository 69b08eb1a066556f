"""Request and response models of the enrolment-code endpoint and EST's renewal information."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from ca_service.api.schemas import Strict, Ticket


class EnrolmentCodeBody(Strict):
    ticket: Ticket | None = Field(
        None, description="The paper ticket: required when an operator mints a master user's code (R9, Q11)"
    )


class EnrolmentCode(BaseModel):
    login_id: str
    code: str = Field(description="The one-time code, XXXX-XXXX-XXXX-XXXX (Crockford base32): show it to the user once")
    expires_at: datetime


class SuggestedWindow(BaseModel):
    start: datetime
    end: datetime


class RenewalInfo(BaseModel):
    suggestedWindow: SuggestedWindow
    explanationURL: str | None = None
