"""Console operator accounts: people of the help desk, each with a password (argon2id)
and a TOTP second factor (RFC 6238, 30-second steps, a code accepted once). Repeated failures lock
the account for a while; logout, reset and disable end every console session of the account.
The SQL is in ca_service/store/operators.py."""

from __future__ import annotations

import functools
import hmac
import logging
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

import pyotp
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from ca_service import metrics
from ca_service.constants import FREE_TEXT
from ca_service.context import Actor, ServiceContext
from ca_service.errors import Conflict, InvalidInput, NotFound, TooManyRequests, Unauthenticated, Unavailable
from ca_service.pki.sealing import Unsealable, seal, unseal
from ca_service.services.access import console_login_limits as limits
from ca_service.services.audit.change import change
from ca_service.store import operators as store
from ca_service.store.db import reading
from ca_service.store.models import Operator

log = logging.getLogger("ca_service.console")
USERNAME = re.compile(r"^[a-z][a-z0-9._-]{1,63}$")
TOTP_STEP = 30
_HASHER = PasswordHasher()  # argon2id, the library's (RFC 9106) defaults


@functools.cache
def _dummy_hash() -> str:
    """What an unknown username's password is checked against, so it costs as much as a known
    one. Made on the first login attempt, not at import: an argon2id hash is ~0.15 s of CPU and
    64 MiB, which every CLI command and every process start would otherwise pay."""
    return _HASHER.hash(secrets.token_urlsafe(16))


_TOTP_PURPOSE = b"ca-service console operator TOTP seed v1"


class LoginRefused(Unauthenticated):
    code, title = "login-refused", "Login refused"


class OperatorLocked(TooManyRequests):
    code, title = "operator-locked", "Too many failed logins"


class LoginLimited(TooManyRequests):
    code, title = "login-attempts-limited", "Too many login attempts"


@dataclass(frozen=True)
class OperatorInfo:
    username: str
    display_name: str | None
    created_at: datetime
    disabled_at: datetime | None
    locked_until: datetime | None
    last_login_at: datetime | None
    session_epoch: int


@dataclass(frozen=True)
class Credentials:
    """Printed once by `operators create` / `operators reset`; only the hash is kept."""

    username: str
    password: str
    totp_secret: str
    totp_uri: str


def _info(row: Operator) -> OperatorInfo:
    return OperatorInfo(
        row.username, row.display_name, row.created_at, row.disabled_at, row.locked_until, row.last_login_at, row.session_epoch
    )


def console_actor(username: str, request_id: str | None = None, *, requested_by: str | None = None) -> Actor:
    """An operator acting in the console: audited as `console:<username>` with the operator role."""
    return Actor(client_name=f"console:{username}", role="operator", request_id=request_id, requested_by=requested_by)


def _new_credentials(ctx: ServiceContext, username: str) -> tuple[Credentials, str]:
    password = secrets.token_urlsafe(18)
    secret = pyotp.random_base32()
    uri = pyotp.TOTP(secret).provisioning_uri(name=username, issuer_name=f"{ctx.settings.organization_name} CA console")
    return Credentials(username, password, secret, uri), _HASHER.hash(password)


def _console_secret(ctx: ServiceContext) -> bytes:
    secret = ctx.settings.console_secret()
    if secret is None:
        raise Unavailable(
            "set CA_CONSOLE_SECRET_KEY (or _FILE): operators' TOTP seeds are sealed with it", code="console-not-configured"
        )
    return secret


def _sealed_seed(ctx: ServiceContext, seed: str) -> str:
    """The TOTP seed as stored: sealed with the console secret (pki.sealing), never in clear."""
    return seal(_console_secret(ctx), _TOTP_PURPOSE, seed)


def _seed(ctx: ServiceContext, row: Operator) -> str | None:
    try:
        return unseal(_console_secret(ctx), _TOTP_PURPOSE, row.totp_secret)
    except Unsealable:
        log.error(
            "operator %s: the TOTP seed cannot be unsealed with this CA_CONSOLE_SECRET_KEY (changed?): reset the operator",
            row.username,
        )
        return None


def create(ctx: ServiceContext, actor: Actor, username: str, display_name: str | None = None) -> Credentials:
    if not USERNAME.fullmatch(username):  # not .match: its `$` allows a final newline
        raise InvalidInput(
            "username: 2-64 characters, lower-case letters, digits, '.', '_' or '-', starting with a letter",
            fields={"username": "invalid"},
        )
    if display_name is not None and (len(display_name) > 200 or not re.fullmatch(FREE_TEXT, display_name)):
        raise InvalidInput(
            "display name: at most 200 characters, no control or bidi control characters", fields={"display_name": "invalid"}
        )
    creds, password_hash = _new_credentials(ctx, username)
    sealed = _sealed_seed(ctx, creds.totp_secret)
    with change(ctx, actor) as uow:
        if store.get(uow.session, username) is not None:
            raise Conflict(f"an operator named {username!r} already exists", code="operator-exists")
        now = ctx.clock.now()
        store.add(
            uow.session, username=username, display_name=display_name, password_hash=password_hash, totp_secret=sealed,
            created_at=now,
        )  # fmt: skip
        uow.audit("operator.created", target_type="operator", target_id=username, display_name=display_name)
    return creds


def list_operators(ctx: ServiceContext) -> list[OperatorInfo]:
    with reading(ctx.sessions) as session:
        return [_info(r) for r in store.all_operators(session)]


def _locked(session_row: Operator | None, username: str) -> Operator:
    if session_row is None:
        raise NotFound(f"no operator {username!r}", code="operator-not-found")
    return session_row


def disable(ctx: ServiceContext, actor: Actor, username: str) -> OperatorInfo:
    with change(ctx, actor) as uow:
        row = _locked(store.get(uow.session, username, for_update=True), username)
        if row.disabled_at is None:
            row.disabled_at = ctx.clock.now()
            row.session_epoch += 1
            uow.audit("operator.disabled", target_type="operator", target_id=username)
        info = _info(row)
    return info


def reset(ctx: ServiceContext, actor: Actor, username: str) -> Credentials:
    """A new password and TOTP secret (the person lost theirs); unlocks and re-enables the account."""
    creds, password_hash = _new_credentials(ctx, username)
    sealed = _sealed_seed(ctx, creds.totp_secret)
    with change(ctx, actor) as uow:
        row = _locked(store.get(uow.session, username, for_update=True), username)
        row.password_hash, row.totp_secret = password_hash, sealed
        row.failed_logins, row.locked_until, row.disabled_at, row.last_totp_step = 0, None, None, None
        row.session_epoch += 1
        uow.audit("operator.reset", target_type="operator", target_id=username)
    limits.clear(ctx, username)
    return creds


def _totp_step(secret: str, otp: str, now: datetime, last_step: int | None) -> int | None:
    """The time step the code belongs to (now, or one step either side for clock skew), if it was
    not used before."""
    code = otp.strip().replace(" ", "")
    if not code.isdigit() or len(code) != 6:
        return None
    totp = pyotp.TOTP(secret)
    current = int(now.timestamp()) // TOTP_STEP
    for step in (current, current - 1, current + 1):
        if hmac.compare_digest(totp.at(step * TOTP_STEP), code) and (last_step is None or step > last_step):
            return step
    return None


def _password_ok(password_hash: str, password: str) -> bool:
    try:
        return _HASHER.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def authenticate(
    ctx: ServiceContext, username: str, password: str, otp: str, request_id: str | None = None, address: str = "unknown"
) -> OperatorInfo:
    """Password and TOTP code from a client `address`, or LoginRefused (never saying which was
    wrong, nor whether the account exists) / LoginLimited / OperatorLocked. The limits
    (services/access/console_login_limits) are decided before any hashing; the password is hashed
    outside any transaction (an unknown or disabled account hashes a dummy: the same cost). Every
    outcome on an existing account is audited."""
    refused = limits.admit(ctx, address, username)
    if refused is not None:
        why, wait = refused
        metrics.CONSOLE_LOGIN_LIMITED.labels(why).inc()
        if why == "address":
            raise LoginLimited("too many login attempts from this address; try again in a minute", retry_after=wait)
        raise OperatorLocked(_locked_message(ctx, ctx.clock.now() + timedelta(seconds=wait)), retry_after=wait)
    with reading(ctx.sessions) as session:
        row = store.get(session, username)
        known = row is not None and row.disabled_at is None
        password_hash = row.password_hash if row is not None and known else _dummy_hash()
    metrics.CONSOLE_PASSWORD_CHECKS.inc()
    password_ok = _password_ok(password_hash, password) and known
    info = _record_attempt(ctx, username, password, otp, request_id, address, password_ok) if known else None
    if info is not None:
        limits.note_success(ctx, address, username)
        return info
    locked_for = limits.note_failure(ctx, address, username)
    if locked_for is not None and known:
        with change(ctx, console_actor(username, request_id)) as uow:
            uow.audit(
                "operator.locked", target_type="operator", target_id=username, address=address, until=ctx.clock.now() + locked_for
            )
    raise LoginRefused("the username, password or one-time code is wrong")


def _record_attempt(
    ctx: ServiceContext, username: str, password: str, otp: str, request_id: str | None, address: str, password_ok: bool
) -> OperatorInfo | None:
    """Under the account's row lock: the TOTP code (each step accepted once), and the audit."""
    with change(ctx, console_actor(username, request_id)) as uow:
        row = store.get(uow.session, username, for_update=True)
        if row is None or row.disabled_at is not None:
            return None
        now = ctx.clock.now()
        seed = _seed(ctx, row) if password_ok else None
        step = _totp_step(seed, otp, now, row.last_totp_step) if seed is not None else None
        if step is not None:
            row.failed_logins, row.locked_until, row.last_totp_step, row.last_login_at = 0, None, step, now
            if _HASHER.check_needs_rehash(row.password_hash):
                row.password_hash = _HASHER.hash(password)
            uow.audit("operator.login", target_type="operator", target_id=username, address=address)
            info: OperatorInfo | None = _info(row)
        else:
            info = None
            row.failed_logins += 1  # kept for the record; the lock-out is per address (console_login_limits)
            uow.audit(
                "operator.login_failed", target_type="operator", target_id=username, failures=row.failed_logins, address=address
            )
    return info


def _locked_message(ctx: ServiceContext, until: datetime) -> str:
    local = until.astimezone(ctx.settings.tz)
    return f"too many failed logins from this address: locked until {local:%Y-%m-%d %H:%M} {local.tzname()}"


def logout(ctx: ServiceContext, username: str, request_id: str | None = None) -> None:
    """Ends every console session of this operator (the session epoch moves on)."""
    with change(ctx, console_actor(username, request_id)) as uow:
        row = store.get(uow.session, username, for_update=True)
        if row is None:
            return
        row.session_epoch += 1
        uow.audit("operator.logout", target_type="operator", target_id=username)


def session_operator(ctx: ServiceContext, username: str, epoch: int) -> OperatorInfo | None:
    """The operator of a console session, if the account is enabled and the session not ended."""
    with reading(ctx.sessions) as session:
        row = store.get(session, username)
        if row is None or row.disabled_at is not None or row.session_epoch != epoch:
            return None
        return _info(row)
