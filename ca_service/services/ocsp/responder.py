"""Answering OCSP requests (RFC 6960) from the database.

The issuer of a request is found by comparing its issuerNameHash/issuerKeyHash with those of
every issuing CA held (computed once per hash algorithm, cached per process). Status: `good` for
a certificate issued and not revoked (also after expiry, RFC 6960 practice), `revoked` with time
and reason, `unknown` for a serial never issued by that CA or an issuer not held. Garbage gets
the malformedRequest response status, any failure internalError: never an HTTP 500.

Hot path, in an API server: a pre-signed response from the process's LRU, no database read
(services/ocsp/invalidation bounds its staleness after a revocation to under a second). Else one
indexed read of the certificate's status, no database write; a cached signed response with the
same status (ocsp_cache, LRU or Redis) is served without signing. Nonce requests are signed fresh
and never cached.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any

from cryptography import x509

from ca_service import metrics
from ca_service.context import ServiceContext
from ca_service.pki.ocsp import (
    MalformedOCSPRequest,
    OCSPStatus,
    ParsedOCSPRequest,
    build_error_response,
    build_response,
    parse_request,
    response_says,
)
from ca_service.services.authority import responder_certificates as ocsp_signer
from ca_service.services.authority.hierarchy import active_issuer, serial_hex
from ca_service.services.ocsp import cache as ocsp_cache
from ca_service.services.ocsp import invalidation as ocsp_invalidation
from ca_service.services.ocsp.state import CachedResponse, IssuerIndex, OcspState
from ca_service.store.authorities import issuing_certificates
from ca_service.store.db import reading
from ca_service.store.hot_reads import certificate_status

log = logging.getLogger("ca_service.ocsp")
RELOAD_SECONDS = 10.0  # an unmatched issuer re-reads the CA list at most this often


@dataclass(frozen=True)
class OCSPAnswer:
    der: bytes
    status: str  # good | revoked | unknown, or the error response status
    this_update: datetime | None = None
    next_update: datetime | None = None
    cacheable: bool = False  # successful and without nonce: HTTP caches may keep it
    from_cache: bool = False


def _load_index(ctx: ServiceContext) -> IssuerIndex:
    with reading(ctx.sessions) as session:
        rows = issuing_certificates(session)
    return IssuerIndex([(ca_id, x509.load_der_x509_certificate(der)) for ca_id, der in rows], time.monotonic())


def match_issuer(ctx: ServiceContext, req: ParsedOCSPRequest) -> int | None:
    """The id of the issuing CA the request's CertID names, or None if we do not hold it."""
    state = ctx.local(OcspState)
    index = state.issuers
    if index is None:
        with state.issuers_lock:
            index = state.issuers = _load_index(ctx)
    found = index.match(req.hash_algorithm, req.issuer_name_hash, req.issuer_key_hash)
    if found is None and time.monotonic() - index.loaded_at > RELOAD_SECONDS:
        with state.issuers_lock:
            index = state.issuers = _load_index(ctx)  # a CA added since (key rollover)
        found = index.match(req.hash_algorithm, req.issuer_name_hash, req.issuer_key_hash)
    return found


@dataclass(frozen=True)
class _Status:
    status: OCSPStatus
    revoked_at: datetime | None = None
    reason: str | None = None


def lookup_status(ctx: ServiceContext, issuer_id: int | None, serial: str) -> _Status:
    if issuer_id is None:
        return _Status("unknown")
    row = certificate_status(ctx.hot_reader, serial)
    if row is None or row.issuer_id != issuer_id:
        return _Status("unknown")
    if row.revoked_at is not None:
        return _Status("revoked", row.revoked_at, row.revocation_reason or "unspecified")
    return _Status("good")


def malformed() -> OCSPAnswer:
    metrics.OCSP_REQUESTS.labels("malformedRequest").inc()
    return OCSPAnswer(build_error_response("malformedRequest"), "malformedRequest")


def _internal_error() -> OCSPAnswer:
    metrics.OCSP_REQUESTS.labels("internalError").inc()
    return OCSPAnswer(build_error_response("internalError"), "internalError")


def _sign(ctx: ServiceContext, req: ParsedOCSPRequest, signer_issuer_id: int, st: _Status) -> OCSPAnswer:
    responder = ocsp_signer.responder_for(ctx, signer_issuer_id)
    issuer_cert = _issuer_cert(ctx, signer_issuer_id)
    this_update = ctx.clock.now().replace(microsecond=0)
    next_update = this_update + timedelta(minutes=ctx.settings.ocsp_validity_minutes)
    with metrics.OCSP_SIGNING_SECONDS.time():
        der = build_response(
            request=req,
            issuer_cert=issuer_cert,
            responder_cert=responder.certificate,
            responder_key=responder.signer,
            status=st.status,
            revoked_at=st.revoked_at,
            reason=st.reason,
            this_update=this_update,
            next_update=next_update,
        )
    return OCSPAnswer(der, st.status, this_update, next_update, cacheable=req.nonce is None)


def _issuer_cert(ctx: ServiceContext, issuer_id: int) -> x509.Certificate:
    index = ctx.local(OcspState).issuers
    if index is not None:
        for known_id, cert in index.issuers:
            if known_id == issuer_id:
                return cert
    return active_issuer(ctx).context.certificate


def _answer(ctx: ServiceContext, req: ParsedOCSPRequest) -> OCSPAnswer:
    issuer_id = match_issuer(ctx, req)
    serial = serial_hex(req.serial)
    if req.nonce is not None or issuer_id is None:
        st = lookup_status(ctx, issuer_id, serial)
        metrics.OCSP_REQUESTS.labels(st.status).inc()
        metrics.OCSP_CACHE.labels("bypass").inc()
        # An issuer we do not hold: `unknown`, signed by the active issuing CA's responder.
        return _sign(ctx, req, issuer_id if issuer_id is not None else active_issuer(ctx).id, st)
    key, generation, presigned = _presigned(ctx, req, issuer_id, serial)
    if presigned is not None:
        return presigned
    cached = ocsp_cache.get(ctx, key)  # the LRU's or Redis's: only served if the status still matches
    st = lookup_status(ctx, issuer_id, serial)
    if cached is not None and cached.status == st.status and (cached.checked or _agrees(ctx, cached, req, st)):
        cached = cached if cached.checked else dataclasses.replace(cached, checked=True)
        ocsp_cache.put_local(ctx, key, cached, generation)
        return _from_cache(ctx, cached)
    metrics.OCSP_REQUESTS.labels(st.status).inc()
    metrics.OCSP_CACHE.labels("stale" if cached is not None else "miss").inc()
    result = _sign(ctx, req, issuer_id, st)
    assert result.next_update is not None
    ocsp_cache.put(ctx, key, generation, CachedResponse(st.status, result.next_update, result.der))
    return result


def _agrees(ctx: ServiceContext, cached: CachedResponse, req: ParsedOCSPRequest, st: _Status) -> bool:
    """A Redis entry's own DER answers this request with the database's status."""
    revoked_at = st.revoked_at
    if revoked_at is not None and revoked_at.tzinfo is None:
        revoked_at = revoked_at.replace(tzinfo=UTC)
    agrees = response_says(
        cached.der,
        request=req,
        status=st.status,
        revoked_at=revoked_at,
        this_update=ocsp_cache.this_update_of(ctx, cached.next_update),
        next_update=cached.next_update,
    )
    if not agrees:
        metrics.OCSP_CACHE.labels("rejected").inc()
        log.warning("OCSP cache entry for %s does not say what its key and label say; re-signing", serial_hex(req.serial))
    return agrees


def _presigned(ctx: ServiceContext, req: ParsedOCSPRequest, issuer_id: int, serial: str) -> tuple[str, int, OCSPAnswer | None]:
    """The cache key, the LRU's generation (read before any status is), and the pre-signed answer
    if the LRU holds one and the invalidation watch is live (then no database read is needed)."""
    key = ocsp_cache.cache_key(ctx, issuer_id, serial, req.hash_algorithm.name)
    generation, live = ocsp_invalidation.snapshot(ctx)
    cached = ocsp_cache.local_hit(ctx, key) if live else None
    return key, generation, _from_cache(ctx, cached) if cached is not None else None


def presigned_answer(ctx: ServiceContext, der: bytes) -> OCSPAnswer | None:
    """The pre-signed answer to a DER OCSPRequest if this process may serve it without the
    database, else None (a miss, a nonce, an issuer not held, anything odd): `answer` decides
    those. What api/ocsp_fast.py serves below Flask."""
    try:
        req = parse_request(der)
        if req.nonce is not None:
            return None
        issuer_id = match_issuer(ctx, req)
        return None if issuer_id is None else _presigned(ctx, req, issuer_id, serial_hex(req.serial))[2]
    except Exception:  # malformed or failing: the full path answers (malformedRequest, internalError)
        return None


@cache
def _counters(status: str) -> tuple[Any, Any]:
    """The metric children a cache hit counts (labels() costs a locked lookup per call)."""
    return metrics.OCSP_REQUESTS.labels(status), metrics.OCSP_CACHE.labels("hit")


def _from_cache(ctx: ServiceContext, cached: CachedResponse) -> OCSPAnswer:
    requests, hits = _counters(cached.status)
    requests.inc()
    hits.inc()
    this_update = ocsp_cache.this_update_of(ctx, cached.next_update)
    return OCSPAnswer(cached.der, cached.status, this_update, cached.next_update, cacheable=True, from_cache=True)


def answer(ctx: ServiceContext, der: bytes) -> OCSPAnswer:
    """The DER OCSPResponse for a DER OCSPRequest; never raises."""
    try:
        req = parse_request(der)
    except MalformedOCSPRequest:
        return malformed()
    try:
        return _answer(ctx, req)
    except Exception:
        log.exception("OCSP answer failed")
        return _internal_error()
