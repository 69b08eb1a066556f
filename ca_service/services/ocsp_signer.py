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
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import cast

from cryptography import x509
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from ca_service.errors import Unavailable
from ca_service.pki.keys import KeyError_
from ca_service.pki.ocsp import build_responder_certificate
from ca_service.pki.signing import CAPrivateKey
from ca_service.services import audit
from ca_service.services.authorities import active_ca, serial_hex, store_ca
from ca_service.services.context import Actor, ServiceContext
from ca_service.services.post_commit import after_commit
from ca_service.store.db import transaction
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
    key: CAPrivateKey
    not_before: datetime
    not_after: datetime

    def rotation_due(self, now: datetime) -> bool:
        """True once a third or less of the lifetime is left."""
        return self.not_after - now <= (self.not_after - self.not_before) / 3

    def usable(self, now: datetime, margin: timedelta) -> bool:
        """Valid now and for `margin` more (a response must not outlive its signer)."""
        return self.not_before <= now and now + margin < self.not_after


@dataclass(frozen=True)
class RotationResult:
    issuer_name: str
    responder_name: str
    serial: str
    not_after: datetime
    created: bool


def _response_margin(ctx: ServiceContext) -> timedelta:
    return timedelta(minutes=ctx.settings.ocsp_validity_minutes)


def _newest(session: Session, issuer_id: int, now: datetime) -> CertificateAuthority | None:
    """The responder of this issuer that is valid now and lasts longest."""
    return session.scalars(
        select(CertificateAuthority)
        .where(
            CertificateAuthority.kind == "ocsp",
            CertificateAuthority.parent_id == issuer_id,
            CertificateAuthority.not_before <= now,
            CertificateAuthority.not_after > now,
        )
        .order_by(CertificateAuthority.not_after.desc(), CertificateAuthority.id.desc())
        .limit(1)
    ).first()


def _as_responder(ctx: ServiceContext, row: CertificateAuthority) -> Responder:
    try:
        key = ctx.keys.load(row.key_ref)
    except KeyError_ as exc:
        raise Unavailable(str(exc), code="ca-key-unavailable") from None
    return Responder(
        id=row.id,
        name=row.name,
        issuer_id=row.parent_id or 0,
        certificate=x509.load_der_x509_certificate(row.der),
        key=key,
        not_before=row.not_before,
        not_after=row.not_after,
    )


def _issue(session: Session, ctx: ServiceContext, issuer: CertificateAuthority, now: datetime) -> CertificateAuthority:
    issuer_cert = x509.load_der_x509_certificate(issuer.der)
    issuer_key = ctx.keys.load(issuer.key_ref)
    serial = x509.random_serial_number()
    name = f"ocsp-{issuer.name}-{secrets.token_hex(6)}"  # unique: names are never reused, nor key files
    key = ctx.keys.generate(name, KEY_ALGORITHM)
    not_after = min(now + timedelta(days=ctx.settings.ocsp_responder_days), issuer.not_after)
    cert = build_responder_certificate(
        issuer_cert=issuer_cert,
        issuer_key=issuer_key,
        responder_public_key=key.public_key(),
        subject_cn=f"{ctx.settings.organization_name} OCSP Responder ({issuer.name})",
        serial=serial,
        not_before=now - BACKDATE,
        not_after=not_after,
    )
    return store_ca(session, ctx, name=name, kind="ocsp", cert=cert, key_algorithm=KEY_ALGORITHM, parent_id=issuer.id)


def ensure_responder(ctx: ServiceContext, issuer_id: int | None = None, actor: Actor = SYSTEM) -> RotationResult:
    """Make sure the issuing CA (default: the active one) has a responder with more than a third
    of its lifetime left; issue one (and retire the older ones) if not. Idempotent."""
    now = ctx.clock.now().replace(microsecond=0)
    with transaction(ctx.sessions) as session:
        if issuer_id is None:
            issuer = active_ca(session, "issuing")
        else:
            issuer = session.get(CertificateAuthority, issuer_id)
        if issuer is None or issuer.kind != "issuing":
            raise Unavailable("the CA hierarchy is not initialised: run `ca-service init`", code="ca-not-initialised")
        # Serialise concurrent rotations for this issuer (SQLite: BEGIN IMMEDIATE already does).
        session.execute(select(CertificateAuthority.id).where(CertificateAuthority.id == issuer.id).with_for_update())
        if issuer.not_after <= now + _response_margin(ctx):
            raise Unavailable(f"issuing CA {issuer.name} has expired: it cannot issue a responder", code="ca-expired")
        row = _newest(session, issuer.id, now)
        if row is not None:
            lifetime = row.not_after - row.not_before
            if row.not_after - now > lifetime / 3:
                return RotationResult(issuer.name, row.name, row.serial, row.not_after, created=False)
        try:
            row = _issue(session, ctx, issuer, now)
        except KeyError_ as exc:
            raise Unavailable(str(exc), code="ca-key-unavailable") from None
        session.execute(
            update(CertificateAuthority)
            .where(
                CertificateAuthority.kind == "ocsp",
                CertificateAuthority.parent_id == issuer.id,
                CertificateAuthority.id != row.id,
                CertificateAuthority.active.is_(True),
            )
            .values(active=False)
        )
        audit.record(
            session,
            ctx,
            actor,
            "ocsp.responder_issued",
            "ca",
            row.name,
            issuer=issuer.name,
            serial=row.serial,
            not_after=row.not_after.isoformat(),
        )
        result = RotationResult(issuer.name, row.name, row.serial, row.not_after, created=True)
    after_commit(ctx)
    return result


def ensure_all_responders(ctx: ServiceContext, actor: Actor = SYSTEM) -> list[RotationResult]:
    """`ensure_responder` for every issuing CA still valid past one response lifetime (the
    active one and, after a key rollover, older ones whose certificates are still in use)."""
    horizon = ctx.clock.now() + _response_margin(ctx)
    with ctx.sessions() as session:
        ids = session.scalars(
            select(CertificateAuthority.id)
            .where(CertificateAuthority.kind == "issuing", CertificateAuthority.not_after > horizon)
            .order_by(CertificateAuthority.id)
        ).all()
    return [ensure_responder(ctx, issuer_id, actor) for issuer_id in ids]


def _lock(ctx: ServiceContext) -> threading.Lock:
    # Not ctx.lock: ensure_responder -> after_commit takes ctx.lock (not re-entrant).
    return cast(threading.Lock, ctx.cache.setdefault("ocsp_signer_lock", threading.Lock()))


def responder_for(ctx: ServiceContext, issuer_id: int) -> Responder:
    """The responder that signs for this issuing CA, cached per process (see module docstring)."""
    cache = ctx.cache.setdefault("ocsp_responders", {})
    assert isinstance(cache, dict)
    now = ctx.clock.now()
    margin = _response_margin(ctx)
    entry = cache.get(issuer_id)
    if entry is not None:
        responder, checked = entry
        interval = DUE_REFRESH_SECONDS if responder.rotation_due(now) else REFRESH_SECONDS
        if responder.usable(now, margin) and time.monotonic() - checked < interval:
            return responder
    with _lock(ctx):
        with ctx.sessions() as session:
            row = _newest(session, issuer_id, now)
        responder = _as_responder(ctx, row) if row is not None else None
        if responder is None or not responder.usable(now, margin):
            ensure_responder(ctx, issuer_id)
            with ctx.sessions() as session:
                row = _newest(session, issuer_id, now)
            assert row is not None
            responder = _as_responder(ctx, row)
        cache[issuer_id] = (responder, time.monotonic())
        return responder


def responder_serial(responder: Responder) -> str:
    return serial_hex(responder.certificate.serial_number)
