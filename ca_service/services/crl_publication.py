"""CRL publication (DESIGN §3): the issuing CA's CRL from the database, numbered, stored, and
written atomically to CA_DATA_DIR/public for a static web server; the root CA's CRL likewise.

Correctness under concurrency rests on one lock: the CA's row. Every revocation increments the
CA's `revocation_count` under that row's lock until it commits; a publication takes the same
lock first, so every revocation it has counted is committed and visible to its query, its CRL
number is the next one, and two workers publishing at once simply run one after the other. A
publication request whose revocations are already covered by the latest CRL does nothing, which
is how a burst of revocations coalesces into a handful of publications.
"""

from __future__ import annotations

import logging
import os
import tempfile
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from cryptography import x509
from sqlalchemy import select
from sqlalchemy.orm import Session, defer

from ca_service import metrics
from ca_service.errors import NotFound, Unavailable
from ca_service.pki.crl import RevokedEntry, build_crl, build_large_crl
from ca_service.services import audit
from ca_service.services.authorities import active_ca
from ca_service.services.context import Actor, ServiceContext
from ca_service.services.post_commit import after_commit
from ca_service.store.crl_entries import revoked_entries
from ca_service.store.db import transaction
from ca_service.store.models import CertificateAuthority, Crl

log = logging.getLogger("ca_service.crl")
SYSTEM = Actor(client_name="crl-publisher", role="system")


@dataclass(frozen=True)
class CrlResult:
    ca_name: str
    crl_number: int
    this_update: datetime
    next_update: datetime
    entries: int
    published: bool  # False: the latest CRL already covered every revocation


def _write_public(ctx: ServiceContext, names: list[str], der: bytes) -> None:
    """temp file + fsync + rename: a reader (or a crash) never sees a half-written CRL."""
    directory = ctx.settings.public_dir
    directory.mkdir(parents=True, exist_ok=True)
    for name in names:
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(der)
                fh.flush()
                os.fsync(fh.fileno())
            os.chmod(tmp, 0o644)
            os.replace(tmp, directory / f"{name}.crl")
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


class _Counter:
    """Passes rows through, counting them (the CRL's entry count without a list of 1M rows)."""

    def __init__(self, rows: Iterable[tuple[str, str, str]]) -> None:
        self.rows = rows
        self.count = 0

    def __iter__(self) -> Iterator[tuple[str, str, str]]:
        for row in self.rows:
            self.count += 1
            yield row


def _latest(session: Session, issuer_id: int) -> Crl | None:
    """The CA's newest CRL row; its DER (50 MB at 1M entries) is loaded only when read."""
    return session.scalars(
        select(Crl).where(Crl.issuer_id == issuer_id).order_by(Crl.crl_number.desc()).limit(1).options(defer(Crl.der))
    ).first()


def _publish_one(ctx: ServiceContext, kind: str, *, force: bool, actor: Actor, ca_id: int | None = None) -> CrlResult:
    """Publish the CRL of the active CA of `kind` (also under the alias `<kind>.crl`), or of the
    CA `ca_id` (an issuing CA retired by a rollover: under its own name only)."""
    with transaction(ctx.sessions) as session:
        if ca_id is None:
            active = active_ca(session, kind)
            if active is None:
                raise Unavailable("the CA hierarchy is not initialised: run `ca-service init`", code="ca-not-initialised")
            ca_id = active.id
            names = [active.name, kind]
        else:
            names = []
        ca = session.get(CertificateAuthority, ca_id, with_for_update=True, populate_existing=True)
        assert ca is not None
        latest = _latest(session, ca.id)
        now = ctx.clock.now().replace(microsecond=0)
        if latest is not None and not force and latest.revocation_count == ca.revocation_count and latest.next_update > now:
            return CrlResult(ca.name, latest.crl_number, latest.this_update, latest.next_update, latest.entries, False)
        number = (latest.crl_number + 1) if latest else 1
        next_update = now + timedelta(hours=ctx.settings.crl_validity_hours)
        issuer_cert = x509.load_der_x509_certificate(ca.der)
        key = ctx.keys.load(ca.key_ref)
        if kind == "issuing":
            counted = _Counter(revoked_entries(session, ca.id, now))  # streamed: encoded as they arrive
            der = build_large_crl(
                issuer_cert=issuer_cert,
                issuer_key=key,
                entries=counted,
                crl_number=number,
                this_update=now,
                next_update=next_update,
            )
            count = counted.count
        else:  # the root's CRL lists revoked issuing CAs
            revoked_cas = session.scalars(
                select(CertificateAuthority).where(
                    CertificateAuthority.parent_id == ca.id, CertificateAuthority.revoked_at.is_not(None)
                )
            ).all()
            root_entries = [
                RevokedEntry(int(c.serial, 16), c.revoked_at or now, c.revocation_reason or "unspecified") for c in revoked_cas
            ]
            count = len(revoked_cas)
            der = build_crl(
                issuer_cert=issuer_cert,
                issuer_key=key,
                crl_number=number,
                this_update=now,
                next_update=next_update,
                entries=root_entries,
            )
        session.add(
            Crl(
                issuer_id=ca.id, crl_number=number, this_update=now, next_update=next_update, entries=count,
                revocation_count=ca.revocation_count, der=der, created_at=now,
            )
        )  # fmt: skip
        audit.record(session, ctx, actor, "crl.published", "ca", ca.name, crl_number=number, entries=count)
        result = CrlResult(ca.name, number, now, next_update, count, True)
        _write_public(ctx, names or [ca.name], der)  # still under the lock: files follow number order
    log.info("published CRL %s #%s with %s entries", result.ca_name, number, result.entries)
    metrics.CRL_PUBLISHED.labels(kind).inc()
    after_commit(ctx)
    return result


def seconds_since_pending_publication(ctx: ServiceContext) -> float | None:
    """None if every revocation is on the issuing CA's latest CRL; else how long ago that CRL
    was published (infinity if there is none). A cheap read, no lock."""
    with ctx.sessions() as session:
        ca = active_ca(session, "issuing")
        if ca is None:
            return None
        latest = _latest(session, ca.id)
        if latest is None:
            return float("inf")
        if latest.revocation_count == ca.revocation_count:
            return None
        return (ctx.clock.now() - latest.created_at).total_seconds()


def publish(
    ctx: ServiceContext,
    *,
    force: bool = False,
    actor: Actor = SYSTEM,
    settle_seconds: float = 0.0,
    min_interval_seconds: float = 0.0,
) -> list[CrlResult]:
    """Publish the issuing CA's CRL if a revocation is not on it yet (or `force`), the root's, and
    those of issuing CAs retired by a rollover (results in that order).

    When there is something to publish (and not `force`), wait first: `settle_seconds`, so that
    the rest of a burst of revocations lands on the same CRL, and at least until
    `min_interval_seconds` after the previous publication, so that a long burst makes one CRL per
    interval rather than one per settle period. The requests queued behind then find nothing
    left to do."""
    if not force and (settle_seconds > 0 or min_interval_seconds > 0):
        since = seconds_since_pending_publication(ctx)
        if since is not None:
            # a clock moved backwards (tests) counts as "just published": wait at most the interval
            time.sleep(max(settle_seconds, min(min_interval_seconds, min_interval_seconds - since)))
    results = [_publish_one(ctx, "issuing", force=force, actor=actor), _publish_one(ctx, "root", force=force, actor=actor)]
    for ca_id in _retired_issuing_cas(ctx):
        results.append(_publish_one(ctx, "issuing", force=force, actor=actor, ca_id=ca_id))
    return results


def _retired_issuing_cas(ctx: ServiceContext) -> list[int]:
    """Issuing CAs replaced by a rollover whose certificates may still be in use (the CA has not
    expired, so neither have they): their CRLs stay published (docs/operations.md)."""
    with ctx.sessions() as session:
        return list(
            session.scalars(
                select(CertificateAuthority.id)
                .where(
                    CertificateAuthority.kind == "issuing",
                    CertificateAuthority.active.is_(False),
                    CertificateAuthority.not_after > ctx.clock.now(),
                )
                .order_by(CertificateAuthority.id)
            )
        )


@dataclass(frozen=True)
class CrlDocument:
    ca_name: str
    crl_number: int
    this_update: datetime
    next_update: datetime
    entries: int
    der: bytes


def latest_crl(ctx: ServiceContext, name: str) -> CrlDocument:
    """The newest CRL of a CA by name (`issuing` and `root` name the active ones)."""
    with ctx.sessions() as session:
        if name in ("issuing", "root"):
            ca = active_ca(session, name)
        else:
            ca = session.scalars(select(CertificateAuthority).where(CertificateAuthority.name == name)).first()
        crl = _latest(session, ca.id) if ca is not None and ca.kind in ("issuing", "root") else None
        if ca is None or crl is None:
            raise NotFound(f"no CRL published for {name!r} yet", code="crl-not-found")
        return CrlDocument(ca.name, crl.crl_number, crl.this_update, crl.next_update, crl.entries, crl.der)
