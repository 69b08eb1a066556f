"""What the store raises instead of driver errors: a typed error per UNIQUE constraint that a
caller can meet in normal operation (chosen by the constraint's name, never by message text),
and one `Unavailable` (of the domain's Unavailable kind: 503) for a database that cannot do the
work now.

Constraint names follow the naming convention of store/models.py (`uq_<table>_<column>`):
PostgreSQL reports the name itself; SQLite reports `<table>.<column>`, from which the same name
is derived."""

from __future__ import annotations

import re

from sqlalchemy import exc

from ca_service.errors import Unavailable as UnavailableKind


class ConstraintViolation(Exception):
    """A write refused by a UNIQUE constraint (`constraint`: its name)."""

    def __init__(self, constraint: str) -> None:
        super().__init__(constraint)
        self.constraint = constraint


class KeyReused(ConstraintViolation):
    """uq_certificates_spki_sha256: this public key was certified before."""


class ActiveCertificateExists(ConstraintViolation):
    """uq_certificates_current_login_id: the login ID already has a current certificate."""


class SerialCollision(ConstraintViolation):
    """uq_certificates_serial: a random serial number was drawn twice."""


class DuplicateName(ConstraintViolation):
    """uq_api_clients_name (or another unique name)."""


class LoginIdTaken(ConstraintViolation):
    """pk_users / uq_users_login_id_lower: another transaction registered this login ID (or a
    spelling of it that differs only in case) first."""


_BY_CONSTRAINT: dict[str, type[ConstraintViolation]] = {
    "uq_certificates_spki_sha256": KeyReused,
    "uq_certificates_current_login_id": ActiveCertificateExists,
    "uq_certificates_serial": SerialCollision,
    "uq_api_clients_name": DuplicateName,
    "pk_users": LoginIdTaken,
    "uq_users_login_id": LoginIdTaken,  # SQLite's name for the primary key (users.login_id)
    "uq_users_login_id_lower": LoginIdTaken,
}


class Unavailable(UnavailableKind):
    """The database cannot do the work now (unreachable, restarting, locked past the timeout, a
    deadlock victim): retryable, of the Unavailable kind like any other dependency that is down.
    `reason` is the driver's first line (never the statement's parameters, which may carry CSRs
    or audit details)."""

    code = "database-unavailable"
    title = "Database unavailable"

    def __init__(self, reason: str, *, connection_invalidated: bool = False) -> None:
        super().__init__("the database could not complete the request (unreachable, restarting or busy); try again shortly")
        self.reason = reason
        self.connection_invalidated = connection_invalidated


_SQLITE_UNIQUE = re.compile(r"UNIQUE constraint failed: (\w+)\.(\w+)")
_SQLITE_UNIQUE_INDEX = re.compile(r"UNIQUE constraint failed: index '(\w+)'")  # an expression index


def constraint_name(err: exc.IntegrityError) -> str | None:
    diag = getattr(err.orig, "diag", None)  # psycopg
    name = getattr(diag, "constraint_name", None)
    if name:
        return str(name)
    message = str(err.orig)
    index = _SQLITE_UNIQUE_INDEX.search(message)
    if index:
        return index[1]
    found = _SQLITE_UNIQUE.search(message)
    return f"uq_{found[1]}_{found[2]}" if found else None


def translate(err: exc.DBAPIError) -> Exception:
    """The store's error for a driver error; the error itself when it has no translation."""
    if isinstance(err, exc.IntegrityError):
        name = constraint_name(err)
        kind = _BY_CONSTRAINT.get(name or "")
        return kind(name or "") if kind is not None else err
    if isinstance(err, exc.OperationalError):
        reason = next(iter(str(err.orig).strip().splitlines()), type(err.orig).__name__)
        return Unavailable(reason, connection_invalidated=err.connection_invalidated)
    return err
