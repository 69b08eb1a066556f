"""Domain errors. Each carries the machine-readable `code` of the API contract (DESIGN §4) and
its kind (the class); no transport detail. The api layer (api/problems.py) maps kinds and codes
to HTTP statuses and renders RFC 9457 problem+json without knowing any business rule."""

from __future__ import annotations

from typing import Any


class ServiceError(Exception):
    code = "bad-request"
    title = "Bad request"

    def __init__(self, detail: str, *, code: str | None = None, **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        if code is not None:
            self.code = code
        self.extra = extra


class NotFound(ServiceError):
    code = "not-found"
    title = "Not found"


class Conflict(ServiceError):
    code = "conflict"
    title = "Conflict"


class NotPermitted(ServiceError):
    code = "not-permitted"
    title = "Not permitted by the bank's rules"


class InvalidInput(ServiceError):
    code = "validation-error"
    title = "Invalid request"


class Unavailable(ServiceError):
    """Retryable, or waiting for an operator (CA not initialised, key unavailable, queue down)."""

    code = "unavailable"
    title = "Service unavailable"
