"""Domain errors. Each carries the machine-readable `code` of the API contract (DESIGN §4);
the api layer turns them into RFC 9457 problem+json without knowing any business rule."""

from __future__ import annotations

from typing import Any


class ServiceError(Exception):
    status = 400
    code = "bad-request"
    title = "Bad request"

    def __init__(self, detail: str, *, code: str | None = None, status: int | None = None, **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        if code is not None:
            self.code = code
        if status is not None:
            self.status = status
        self.extra = extra


class NotFound(ServiceError):
    status = 404
    code = "not-found"
    title = "Not found"


class Conflict(ServiceError):
    status = 409
    code = "conflict"
    title = "Conflict"


class NotPermitted(ServiceError):
    status = 403
    code = "not-permitted"
    title = "Not permitted by the bank's rules"


class InvalidInput(ServiceError):
    status = 400
    code = "validation-error"
    title = "Invalid request"


class Unavailable(ServiceError):
    status = 503
    code = "unavailable"
    title = "Service unavailable"
