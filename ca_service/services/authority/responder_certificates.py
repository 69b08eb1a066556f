"""The delegated OCSP responder certificate: issued by an issuing CA, rotated before it expires.

A responder is a row of `certificate_authorities` with kind='ocsp' and parent_id = the issuing CA;
its key is generated through the KeyBackend (`ctx.keys`), so it is encrypted at rest like the CA
keys. `ensure_responder` (the scheduler's rotation job, `ca-service ocsp rotate`) issues a new one
when none has more than a third of its lifetime left; older ones are then marked inactive (they
stay valid until their notAfter, so responses they signed keep verifying).

The answering path uses `responder_for`, cached per process and re-read from the database at most
every REFRESH_SECONDS (every second once the cached one is due for rotation), so processes move to
a newer responder soon after it exists. It writes only when no usable responder exists at all
(first request after `init`, or the scheduler stopped for a whole lifetime).
"""

from __future__ import annotations

import secrets
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from cryptography import x509

from ca_service.constants import CaKind
from ca_service.context import Actor, ServiceContext
from ca_service.errors import Unavailable
from ca_service.pki.keys import KeyUnavailable
from ca_service.pki.ocsp import build_responder_certificate
from ca_service.pki.signer import Signer
from ca_service.services.audit.change import change
from ca_service.services.authority.hierarchy import active_ca, serial_hex, store_ca
from ca_service.store import authorities as cas
from ca_service.store.db import Tx, reading
from ca_service.store.models import CertificateAuthority

SYSTEM = Actor(client_name="ocsp-rotation", role="system")
KEY_ALGORITHM = "ec-p256"
REFRESH_SECONDS = 60.0
DUE_REFRESH_SECONDS = 1.0
BACKDATE = timedelta(minutes=5)


@dataclass(frozen=True)
class Responder:
    id: int
    name: str
    issuer_id: int
    certificate: x509.Certificate
    signer: Signer
    not_before: datetime
    not_after: datetime

    def rotation_due(self, now: datetime) -> bool:
        """True once a third or less of the lifetime is left."""
        return self.not_after - now <= (self.not_after - self.not_before) / 3

    def usable(self, now: datetime, margin: timedelta) -> bool:
        """Valid now and for `margin` more (a response must not outlive its signer)."""
        return self.not_before <= now and now + margin < self.not_after


@dataclass
class ResponderCache:
    """This process's responder per issuing CA (`ctx.local(ResponderCache)`)."""

    responders: dict[int, tuple[Responder, float]] = field(default_factory=dict)  # issuer id -> (responder, checked at)
    lock: threading.Lock = field(default_factory=threading.Lock)


@dataclass(frozen=True)
class RotationResult:
    issuer_name: str
    responder_name: str
    serial: str
    not_after: datetime
    created: bool


def _response_margin(ctx: ServiceContext) -> timedelta:
    return timedelta(minutes=ctx.settings.ocsp_validity_minutes)


def _as_responder(ctx: ServiceContext, row: CertificateAuthority) -> Responder:
    try:
        signer = ctx.keys.signer(row.key_ref)
    except KeyUnavailable as exc:
        raise Unavailable(str(exc), code="ca-key-unavailable") from None
    return Responder(
        id=row.id,
        name=row.name,
        issuer_id=row.parent_id or 0,
        certificate=x509.load_der_x509_certificate(row.der),
        signer=signer,
        not_before=row.not_before,
        not_after=row.not_after,
    )


def _issue(session: Tx, ctx: ServiceContext, issuer: CertificateAuthority, now: datetime) -> CertificateAuthority:
    issuer_cert = x509.load_der_x509_certificate(issuer.der)
    issuer_signer = ctx.keys.signer(issuer.key_ref)
    serial = x509.random_serial_number()
    name = f"ocsp-{issuer.name}-{secrets.token_hex(6)}"  # unique: names are never reused, nor key files
    ctx.keys.generate(name, KEY_ALGORITHM)
    responder_key = ctx.keys.signer(name)
    not_after = min(now + timedelta(days=ctx.settings.ocsp_responder_days), issuer.not_after)
    cert = build_responder_certificate(
        issuer_cert=issuer_cert,
        issuer_key=issuer_signer,
        responder_public_key=responder_key.public_key(),
        subject_cn=f"{ctx.settings.organization_name} OCSP Responder ({issuer.name})",
        serial=serial,
        not_before=now - BACKDATE,
        not_after=not_after,
    )
    return store_ca(session, ctx, name=name, kind=CaKind.OCSP, cert=cert, key_algorithm=KEY_ALGORITHM, parent_id=issuer.id)


def ensure_responder(ctx: ServiceContext, issuer_id: int | None = None, actor: Actor = SYSTEM) -> RotationResult:
    """Make sure the issuing CA (default: the active one) has a responder with more than a third
    of its lifetime left; issue one (and retire the older ones) if not. Idempotent."""
    now = ctx.clock.now().replace(microsecond=0)
    with change(ctx, actor) as uow:
        session = uow.session
        if issuer_id is None:
            issuer = active_ca(session, CaKind.ISSUING)
        else:
            issuer = cas.get_ca(session, issuer_id)
        if issuer is None or issuer.kind != CaKind.ISSUING:
            raise Unavailable("the CA hierarchy is not initialised: run `ca-service init`", code="ca-not-initialised")
        cas.lock_for_rotation(session, issuer.id)  # concurrent rotations for this issuer run one after the other
        if issuer.not_after <= now + _response_margin(ctx):
            raise Unavailable(f"issuing CA {issuer.name} has expired: it cannot issue a responder", code="ca-expired")
        row = cas.newest_responder(session, issuer.id, now)
        if row is not None:
            lifetime = row.not_after - row.not_before
            if row.not_after - now > lifetime / 3:
                return RotationResult(issuer.name, row.name, row.serial, row.not_after, created=False)
        try:
            row = _issue(session, ctx, issuer, now)
        except KeyUnavailable as exc:
            raise Unavailable(str(exc), code="ca-key-unavailable") from None
        cas.retire_responders(session, issuer.id, keep_id=row.id)
        uow.audit(
            "ocsp.responder_issued",
            target_type="ca",
            target_id=row.name,
            issuer=issuer.name,
            serial=row.serial,
            not_after=row.not_after,
        )
        result = RotationResult(issuer.name, row.name, row.serial, row.not_after, created=True)
    return result


def ensure_all_responders(ctx: ServiceContext, actor: Actor = SYSTEM) -> list[RotationResult]:
    """`ensure_responder` for every issuing CA still valid past one response lifetime (the
    active one and, after a key rollover, older ones whose certificates are still in use)."""
    horizon = ctx.clock.now() + _response_margin(ctx)
    with reading(ctx.sessions) as session:
        ids = cas.issuing_ids_valid_after(session, horizon)
    return [ensure_responder(ctx, issuer_id, actor) for issuer_id in ids]


def responder_for(ctx: ServiceContext, issuer_id: int) -> Responder:
    """The responder that signs for this issuing CA, cached per process (see module docstring)."""
    state = ctx.local(ResponderCache)
    cache = state.responders
    now = ctx.clock.now()
    margin = _response_margin(ctx)
    entry = cache.get(issuer_id)
    if entry is not None:
        responder, checked = entry
        interval = DUE_REFRESH_SECONDS if responder.rotation_due(now) else REFRESH_SECONDS
        if responder.usable(now, margin) and time.monotonic() - checked < interval:
            return responder
    with state.lock:  # not held by what follows ensure_responder's commit (not re-entrant)
        with reading(ctx.sessions) as session:
            row = cas.newest_responder(session, issuer_id, now)
        found = _as_responder(ctx, row) if row is not None else None
        if found is None or not found.usable(now, margin):
            ensure_responder(ctx, issuer_id)
            with reading(ctx.sessions) as session:
                row = cas.newest_responder(session, issuer_id, now)
            assert row is not None
            found = _as_responder(ctx, row)
        cache[issuer_id] = (found, time.monotonic())
        return found


def responder_serial(responder: Responder) -> str:
    return serial_hex(responder.certificate.serial_number)
