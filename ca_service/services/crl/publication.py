"""CRL publication (DESIGN §3): the issuing CA's CRL from the database, numbered, stored, and
written to CA_DATA_DIR/public for a static web server once committed (services/crl/files.py);
the root CA's CRL likewise.

Correctness under concurrency rests on one lock: the CA's row. Every revocation increments the
CA's `revocation_count` under that row's lock until it commits; a publication takes the same
lock first, so every revocation it has counted is committed and visible to its query, its CRL
number is the next one, and two workers publishing at once simply run one after the other. A
publication request whose revocations are already covered by the latest CRL does nothing, which
is how a burst of revocations coalesces into a handful of publications.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

from cryptography import x509

from ca_service import metrics
from ca_service.constants import CaKind
from ca_service.context import Actor, ServiceContext
from ca_service.errors import NotFound, Unavailable
from ca_service.pki.crl import build_large_crl
from ca_service.services.audit.change import change
from ca_service.services.authority.hierarchy import active_ca
from ca_service.services.crl import files as crl_files
from ca_service.services.crl.results import CrlResult
from ca_service.services.crl.root import stored_root_crl
from ca_service.store import authorities as cas
from ca_service.store import crls
from ca_service.store.db import reading

log = logging.getLogger("ca_service.crl")
SYSTEM = Actor(client_name="crl-publisher", role="system")


class _Counter:
    """Passes rows through, counting them (the CRL's entry count without a list of 1M rows)."""

    def __init__(self, rows: Iterable[tuple[str, str, str]]) -> None:
        self.rows = rows
        self.count = 0

    def __iter__(self) -> Iterator[tuple[str, str, str]]:
        for row in self.rows:
            self.count += 1
            yield row


def _publish_one(ctx: ServiceContext, *, force: bool, actor: Actor, ca_id: int | None = None) -> CrlResult:
    """Publish the CRL of the active issuing CA (also under the alias `issuing.crl`), or of the
    issuing CA `ca_id` (retired by a rollover: under its own name only). The root's CRL is signed
    at a ceremony only (services/crl/root.py)."""
    kind = CaKind.ISSUING
    with change(ctx, actor) as uow:
        session = uow.session
        if ca_id is None:
            active = active_ca(session, kind)
            if active is None:
                raise Unavailable("the CA hierarchy is not initialised: run `ca-service init`", code="ca-not-initialised")
            ca_id = active.id
            names = [active.name, kind]
        else:
            names = []
        ca = cas.lock_ca(session, ca_id)
        assert ca is not None
        latest = crls.latest(session, ca.id)
        now = ctx.clock.now().replace(microsecond=0)
        if latest is not None and not force and latest.revocation_count == ca.revocation_count and latest.next_update > now:
            return CrlResult(ca.name, latest.crl_number, latest.this_update, latest.next_update, latest.entries, False)
        number = crls.next_crl_number(latest)
        next_update = now + timedelta(hours=ctx.settings.crl_validity_hours)
        issuer_cert = x509.load_der_x509_certificate(ca.der)
        signer = ctx.keys.signer(ca.key_ref)
        counted = _Counter(crls.revoked_entries(session, ca.id, now))  # streamed: encoded as they arrive
        der = build_large_crl(
            issuer_cert=issuer_cert,
            issuer_key=signer,
            entries=counted,
            crl_number=number,
            this_update=now,
            next_update=next_update,
        )
        count = counted.count
        crls.insert_crl(
            session, issuer_id=ca.id, crl_number=number, this_update=now, next_update=next_update, entries=count,
            revocation_count=ca.revocation_count, der=der, created_at=now,
        )  # fmt: skip
        uow.audit("crl.published", target_type="ca", target_id=ca.name, crl_number=number, entries=count)
        result = CrlResult(ca.name, number, now, next_update, count, True)
    # Only now that the CRL is committed (never before: a failed commit would leave this number on
    # the web with contents the next publication does not repeat); never over a newer file.
    crl_files.write_committed(ctx, ca_id, number, names or [result.ca_name], der)
    log.info("published CRL %s #%s with %s entries", result.ca_name, number, result.entries)
    metrics.CRL_PUBLISHED.labels(kind).inc()
    return result


def seconds_since_pending_publication(ctx: ServiceContext) -> float | None:
    """None if every revocation is on the issuing CA's latest CRL; else how long ago that CRL
    was published (infinity if there is none). A cheap read, no lock."""
    with reading(ctx.sessions) as session:
        ca = active_ca(session, CaKind.ISSUING)
        if ca is None:
            return None
        latest = crls.latest(session, ca.id)
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
    """Publish the issuing CA's CRL if a revocation is not on it yet (or `force`), the root's as
    stored (signed at a ceremony: services/crl/root.py), and those of issuing CAs retired by a
    rollover (results in that order).

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
    results = [_publish_one(ctx, force=force, actor=actor)]
    root = stored_root_crl(ctx)  # served as stored: this process never loads the offline root key
    if root is not None:
        results.append(root)
    for ca_id in _retired_issuing_cas(ctx):
        results.append(_publish_one(ctx, force=force, actor=actor, ca_id=ca_id))
    return results


def _retired_issuing_cas(ctx: ServiceContext) -> list[int]:
    """Issuing CAs replaced by a rollover whose certificates may still be in use (the CA has not
    expired, so neither have they): their CRLs stay published (docs/operations.md)."""
    with reading(ctx.sessions) as session:
        return cas.issuing_ids_valid_after(session, ctx.clock.now(), retired_only=True)


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
    with reading(ctx.sessions) as session:
        if name in (CaKind.ISSUING, CaKind.ROOT):
            ca = active_ca(session, name)
        else:
            ca = cas.by_name(session, name)
        crl = crls.latest(session, ca.id) if ca is not None and ca.kind in (CaKind.ISSUING, CaKind.ROOT) else None
        if ca is None or crl is None:
            raise NotFound(f"no CRL published for {name!r} yet", code="crl-not-found")
        return CrlDocument(ca.name, crl.crl_number, crl.this_update, crl.next_update, crl.entries, crl.der)


@dataclass(frozen=True)
class CaState:
    """What the metrics gauges show of an active CA (kind: issuing | root) and its latest CRL."""

    kind: str
    ca_not_after: datetime
    crl: CrlResult | None


def ca_states(ctx: ServiceContext) -> list[CaState]:
    """The active issuing and root CAs with their latest CRLs (a cheap read, no lock)."""
    states = []
    with reading(ctx.sessions) as session:
        for kind in (CaKind.ISSUING, CaKind.ROOT):
            ca = active_ca(session, kind)
            if ca is None:
                continue
            crl = crls.latest(session, ca.id)
            result = None
            if crl is not None:
                result = CrlResult(ca.name, crl.crl_number, crl.this_update, crl.next_update, crl.entries, True)
            states.append(CaState(kind, ca.not_after, result))
    return states
