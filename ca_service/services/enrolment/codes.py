"""One-time enrolment codes (DESIGN §4c).

A code is 80 random bits (`secrets`) written as 16 Crockford base32 characters,
`XXXX-XXXX-XXXX-XXXX`. Only SHA-256 of the normalised code (bound to the login ID) is stored:
80 bits of entropy need no slow hash, and 5 wrong tries void the codes anyway. Comparison is
constant-time, and an unknown login ID goes through the same hash and comparison as a known one.

Rules: valid CA_ENROLMENT_CODE_MINUTES; used once, in the issuance's own transaction (a failed
issuance does not use it up); a new code voids the older ones; MAX_ATTEMPTS wrong codes for a
login ID void all its codes; a role change, a switch of the organisation away from certificates
and a revocation by the help desk void them too. The code itself is never logged, audited,
counted or put in an event: only its row id.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from ca_service import metrics
from ca_service.constants import ClientRole, LoginMethod, UserRole
from ca_service.context import Actor, ServiceContext
from ca_service.errors import Conflict, InvalidInput, NotFound, NotPermitted, Unauthenticated
from ca_service.services import events
from ca_service.services.audit.change import Change, change
from ca_service.store import enrolment_codes as store
from ca_service.store import users
from ca_service.store.db import reading
from ca_service.store.models import EnrolmentCode

ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # Crockford base32: no I, L, O, U
CODE_CHARS = 16  # 80 bits
MAX_ATTEMPTS = 5
_AMBIGUOUS = str.maketrans({"O": "0", "I": "1", "L": "1"})
_SEPARATORS = str.maketrans("", "", "- \t")
_LOGIN_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@+-]{0,63}")  # api/schemas.LoginId: anything else is no login ID
_DUMMY = hashlib.sha256(b"no code").hexdigest()  # compared against when there is no code: same work


class EnrolmentUnauthenticated(Unauthenticated):
    """A wrong, used, expired or voided code, or an unknown login ID: one answer for all (no oracle)."""


@dataclass(frozen=True)
class MintedCode:
    login_id: str
    code: str  # shown once to the user; never stored, logged or audited
    expires_at: datetime


@dataclass(frozen=True)
class VerifiedCode:
    login_id: str  # the registered spelling
    code_id: int
    operator_authorised: bool  # minted by the help desk citing a paper ticket


@dataclass(frozen=True)
class CodeView:
    """What the console shows of a code: never the code."""

    id: int
    login_id: str
    minted_by: str
    minted_role: str
    ticket: str | None
    minted_at: datetime
    expires_at: datetime
    attempts: int
    used_at: datetime | None
    certificate_serial: str | None
    voided_at: datetime | None
    void_reason: str | None
    status: str  # open | used | voided | expired


def generate() -> str:
    value = secrets.randbits(5 * CODE_CHARS)
    chars = "".join(ALPHABET[(value >> (5 * i)) & 31] for i in reversed(range(CODE_CHARS)))
    return "-".join(chars[i : i + 4] for i in range(0, CODE_CHARS, 4))


def normalise(code: str) -> str | None:
    """Upper case, no hyphens or spaces, O->0, I->1, L->1; None if it cannot be a code."""
    text = code.upper().translate(_SEPARATORS).translate(_AMBIGUOUS)
    if len(text) != CODE_CHARS or any(c not in ALPHABET for c in text):
        return None
    return text


def code_hash(login_id: str, normalised: str) -> str:
    return hashlib.sha256(b"ca-service enrolment code\x00" + login_id.encode() + b"\x00" + normalised.encode()).hexdigest()


def _actor_name(actor: Actor) -> str:
    return actor.client_name or actor.role


def mint(ctx: ServiceContext, actor: Actor, login_id: str, ticket: str | None = None) -> MintedCode:
    """A new code for the login ID (voiding its older ones). Front end: general users, and a
    master who never had a certificate revoked; a master's code after a revocation is the help
    desk's paper procedure (operator + ticket, R9, Q11)."""
    ticket = ticket.strip() if ticket and ticket.strip() else None
    now = ctx.clock.now().replace(microsecond=0)
    code = generate()
    with change(ctx, actor) as uow:
        session = uow.session
        user = users.get_user(session, login_id, for_update=True)
        if user is None:
            raise NotFound(f"login ID {login_id} is not registered", code="user-not-found")
        org = users.get_org(session, user.org_id)
        if org is None or org.login_method != LoginMethod.CERTIFICATE:
            method = org.login_method if org else None
            raise Conflict(
                f"organisation {user.org_id} uses the {method} login method; enrolment codes are for organisations "
                "on the certificate method",
                code="login-method-not-certificate",
            )
        if user.role == UserRole.MASTER:
            if actor.role == ClientRole.OPERATOR:
                if ticket is None:
                    raise InvalidInput(
                        "a master user's enrolment code is a paper procedure: give the ticket", code="ticket-required"
                    )
            elif store.ever_revoked_except_superseded(session, login_id):
                raise NotPermitted(
                    "this master user's certificate was revoked: only the help desk mints its enrolment code, "
                    "on the paper procedure (R9, Q11)"
                )
        voided = store.void_outstanding(session, login_id, now, "replaced")
        row = store.add(
            session,
            login_id=login_id,
            code_hash=code_hash(login_id, normalise(code) or ""),
            minted_by=_actor_name(actor),
            minted_role=actor.role,
            ticket=ticket if actor.role == ClientRole.OPERATOR else None,
            minted_at=now,
            expires_at=now + timedelta(minutes=ctx.settings.enrolment_code_minutes),
        )
        uow.audit(
            "enrolment_code.minted",
            target_type="user",
            target_id=login_id,
            code_id=row.id,
            expires_at=row.expires_at,
            ticket=row.ticket,
            voided_older=voided,
        )
        expires_at = row.expires_at
    metrics.ENROLMENT_CODES.labels("minted").inc()
    return MintedCode(login_id, code, expires_at)


def verify(ctx: ServiceContext, actor: Actor, login_id: str, presented: str) -> VerifiedCode:
    """Check `login_id:presented` (EST Basic credentials) without using the code up. A wrong code
    counts against the login ID's open code; the MAX_ATTEMPTS-th voids its codes. Raises
    EnrolmentUnauthenticated, the same for every failure."""
    normalised = normalise(presented)
    now = ctx.clock.now()
    result: VerifiedCode | None = None
    with change(ctx, actor) as uow:  # audits (and seals after) only a wrong code
        session = uow.session
        well_formed = _LOGIN_ID.fullmatch(login_id) is not None  # (a NUL would not even reach PostgreSQL)
        registered = users.spelling_ignoring_case(session, login_id) if well_formed else None
        user = users.get_user(session, registered, for_update=True) if registered else None
        row = store.outstanding(session, user.login_id, now, for_update=True) if user else None
        expected = row.code_hash if row is not None else _DUMMY
        given = code_hash(registered or "", normalised or "")
        matches = hmac.compare_digest(expected, given)
        if row is not None and matches and normalised is not None:
            operator_authorised = row.minted_role == ClientRole.OPERATOR and row.ticket is not None
            result = VerifiedCode(row.login_id, row.id, operator_authorised)
        elif row is not None:
            row.attempts += 1
            uow.audit(
                "enrolment_code.rejected", target_type="user", target_id=row.login_id, code_id=row.id, attempts=row.attempts
            )
            if row.attempts >= MAX_ATTEMPTS:
                voided = store.void_outstanding(session, row.login_id, now, "too-many-attempts")
                uow.audit(
                    "enrolment_code.voided",
                    target_type="user",
                    target_id=row.login_id,
                    reason="too-many-attempts",
                    voided=voided,
                )
    if result is None:
        metrics.ENROLMENT_CODES.labels("rejected").inc()
        raise EnrolmentUnauthenticated("the login ID or the enrolment code is wrong, used, expired or voided")
    return result


def use_in(uow: Change, verified: VerifiedCode, serial: str) -> None:
    """Use the code up inside the issuance's unit of work (the user row is locked). If a racing
    enrolment used it first, or it was voided meanwhile, the issuance rolls back."""
    row = store.by_id(uow.session, verified.code_id, for_update=True)
    now = uow.ctx.clock.now()
    if row is None or row.used_at is not None or row.voided_at is not None or row.expires_at <= now:
        raise EnrolmentUnauthenticated("the login ID or the enrolment code is wrong, used, expired or voided")
    row.used_at, row.certificate_serial = now, serial
    uow.audit("enrolment_code.used", target_type="user", target_id=row.login_id, code_id=row.id, serial=serial)
    events.record(
        uow,
        events.ENROLMENT_CODE_USED,
        login_id=row.login_id,
        data={"login_id": row.login_id, "serial": serial, "minted_by_role": row.minted_role, "used_at": now},
    )


def void_in(uow: Change, login_id: str, reason: str) -> int:
    """Void the login ID's open codes inside the caller's unit of work (role change, help-desk
    revocation); audited when there was one."""
    voided = store.void_outstanding(uow.session, login_id, uow.ctx.clock.now(), reason)
    if voided:
        uow.audit("enrolment_code.voided", target_type="user", target_id=login_id, reason=reason, voided=voided)
    return voided


def void_org_in(uow: Change, org_id: str, reason: str) -> int:
    """Void the open codes of every user of the organisation (a switch away from certificates)."""
    total = 0
    for login_id in store.logins_with_open_codes_of_org(uow.session, org_id, uow.ctx.clock.now()):
        total += void_in(uow, login_id, reason)
    return total


def void_codes(ctx: ServiceContext, actor: Actor, login_id: str, reason: str = "voided-by-operator") -> int:
    """Void the login ID's open codes (the console's button)."""
    with change(ctx, actor) as uow:
        if users.get_user(uow.session, login_id, for_update=True) is None:
            raise NotFound(f"login ID {login_id} is not registered", code="user-not-found")
        voided = void_in(uow, login_id, reason)
    return voided


def _status(row: EnrolmentCode, now: datetime) -> str:
    if row.used_at is not None:
        return "used"
    if row.voided_at is not None:
        return "voided"
    return "expired" if row.expires_at <= now else "open"


def list_codes(ctx: ServiceContext, login_id: str, *, limit: int = 20) -> list[CodeView]:
    """The login ID's codes, newest first, for the console (never the code, never its hash)."""
    now = ctx.clock.now()
    with reading(ctx.sessions) as session:
        return [_view(r, now) for r in store.of_user(session, login_id, limit=limit)]


def _view(r: EnrolmentCode, now: datetime) -> CodeView:
    return CodeView(
        r.id, r.login_id, r.minted_by, r.minted_role, r.ticket, r.minted_at, r.expires_at, r.attempts,
        r.used_at, r.certificate_serial, r.voided_at, r.void_reason, _status(r, now),
    )  # fmt: skip
