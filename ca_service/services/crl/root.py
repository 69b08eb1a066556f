"""The offline root's CRL (DESIGN §3 "Key custody"): signed at a ceremony (`ca-service ca
root-crl`, and the first one by `init`), stored, and served as stored by the CRL publication; no
API, worker or scheduler process ever loads the root key. Readiness and the
`ca_crl_next_update_seconds{ca="root"}` gauge warn `WARN_DAYS` before it lapses.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from cryptography import x509

from ca_service.context import Actor, ServiceContext
from ca_service.errors import Unavailable
from ca_service.pki.crl import RevokedEntry, build_crl
from ca_service.pki.keys import KeyUnavailable
from ca_service.services.audit.change import change
from ca_service.services.authority.hierarchy import active_ca
from ca_service.services.crl import files as crl_files
from ca_service.services.crl.results import CrlResult
from ca_service.store import authorities as cas
from ca_service.store import crls
from ca_service.store.db import reading

log = logging.getLogger("ca_service.crl")
DEFAULT_DAYS = 365
WARN_DAYS = 30


def sign_root_crl(ctx: ServiceContext, actor: Actor, *, days: int = DEFAULT_DAYS) -> CrlResult:
    """Sign, store and publish (`root-N.crl`, `root.crl`) the root CA's next CRL, valid `days`.
    A ceremony command: it needs the root key (CA_ROOT_KEY_PASSPHRASE, or the HSM's root object)."""
    if not 1 <= days <= 3 * 366:
        raise ValueError("a root CRL is valid 1 to 1098 days")
    now = ctx.clock.now().replace(microsecond=0)
    with change(ctx, actor) as uow:
        session = uow.session
        active = active_ca(session, "root")
        root = cas.lock_ca(session, active.id) if active is not None else None
        if root is None:
            raise Unavailable("the CA hierarchy is not initialised: run `ca-service init`", code="ca-not-initialised")
        try:
            signer = ctx.keys.signer(root.key_ref)
        except KeyUnavailable as exc:
            raise Unavailable(f"the root key is needed for this ceremony: {exc}", code="ca-key-unavailable") from None
        number = crls.next_crl_number(crls.latest(session, root.id))
        revoked = cas.revoked_children(session, root.id)
        next_update = now + timedelta(days=days)
        der = build_crl(
            issuer_cert=x509.load_der_x509_certificate(root.der),
            issuer_key=signer,
            entries=[RevokedEntry(int(c.serial, 16), c.revoked_at or now, c.revocation_reason or "unspecified") for c in revoked],
            crl_number=number,
            this_update=now,
            next_update=next_update,
        )
        crls.insert_crl(
            session, issuer_id=root.id, crl_number=number, this_update=now, next_update=next_update, entries=len(revoked),
            revocation_count=root.revocation_count, der=der, created_at=now,
        )  # fmt: skip
        uow.audit("crl.published", target_type="ca", target_id=root.name, crl_number=number, entries=len(revoked), ceremony=True)
        result = CrlResult(root.name, number, now, next_update, len(revoked), True)
        root_id = root.id
    crl_files.write_committed(ctx, root_id, number, [result.ca_name, "root"], der)  # once committed
    log.info("signed root CRL %s #%s valid until %s", result.ca_name, number, next_update.isoformat())
    return result


def stored_root_crl(ctx: ServiceContext) -> CrlResult | None:
    """The latest root CRL as stored, written to the public directory if the file there differs
    (a new data volume, a ceremony run elsewhere). Never signs; None if there is none yet."""
    with reading(ctx.sessions) as session:
        root = active_ca(session, "root")
        latest = crls.latest(session, root.id) if root is not None else None
        if root is None or latest is None:
            return None
        result = CrlResult(root.name, latest.crl_number, latest.this_update, latest.next_update, latest.entries, False)
        der, root_id = latest.der, root.id
    for name in (result.ca_name, "root"):
        path = ctx.settings.public_dir / f"{name}.crl"
        if not path.exists() or path.read_bytes() != der:
            crl_files.write_committed(ctx, root_id, result.crl_number, [name], der)
    return result


def status(ctx: ServiceContext) -> str:
    """For /readyz: "ok", or a warning naming what to do (the service keeps serving)."""
    with reading(ctx.sessions) as session:
        root = active_ca(session, "root")
        latest = crls.latest(session, root.id) if root is not None else None
        next_update = latest.next_update if latest is not None else None
    if next_update is None:
        return "missing: sign one at a ceremony (`ca-service ca root-crl`)"
    left = next_update - ctx.clock.now()
    if left <= timedelta(0):
        return f"lapsed at {next_update.isoformat()}: sign a new one now (`ca-service ca root-crl`)"
    if left < timedelta(days=WARN_DAYS):
        return f"lapses in {left.days} days ({next_update.isoformat()}): sign a new one at a ceremony (`ca-service ca root-crl`)"
    return "ok"
