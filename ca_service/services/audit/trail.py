"""The audit trail: one event per state change, in the change's own transaction, then sealed
into a SHA-256 hash chain by whoever gets the sealing lock first (never on the write path).

Each event carries an HMAC-SHA256 of its content (`mac`) under a key the database does not
hold (pki/integrity.py, purpose "audit-event"): the sealer refuses an event without a valid one
-- a row a database writer inserted (a fabricated approval dated days back) stays unsealed, is
logged, counted by ca_audit_unsealed_events (alert CaAuditEventRefused) and fails `audit
verify` -- and verify checks the MAC of every sealed event from the first one that has a MAC on
(events sealed before migration 0013 have none). An HMAC is cheap per event,
a signature would cost far more on every write path."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ca_service.context import Actor, ServiceContext
from ca_service.store import audit_log
from ca_service.store.db import Tx, reading, transaction
from ca_service.store.models import AuditEvent
from ca_service.timefmt import rfc3339

GENESIS = "0" * 64
MAC_PURPOSE = "audit-event"
log = logging.getLogger("ca_service.audit")


def _json_default(value: Any) -> str:
    return rfc3339(value) if isinstance(value, datetime) else str(value)


def canonical_json(value: Any) -> str:
    """Sorted keys, no spaces, UTF-8; datetimes in RFC 3339 UTC (the API's format)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=_json_default)


def record(session: Tx, ctx: ServiceContext, actor: Actor, action: str, target_type: str, target_id: str, **details: Any) -> None:
    """Write one audit event in the caller's transaction (a service writes through its unit of
    work, services/audit/change.py: uow.audit)."""
    audit_log.insert_event(session, event(ctx, actor, action, target_type, target_id, **details))


def event(ctx: ServiceContext, actor: Actor, action: str, target_type: str, target_id: str, **details: Any) -> dict[str, Any]:
    """The row of one audit event (store.audit_log.EVENT_COLUMNS), for a store function that
    inserts it together with the change it records (under dual control, with both operators)."""
    if actor.requested_by is not None:
        details = {**details, "requested_by": actor.requested_by, "approved_by": actor.client_name}
    values = {
        "occurred_at": ctx.clock.now(),
        "client_name": actor.client_name,
        "acting_login_id": actor.acting_login_id,
        "action": action,
        "target_type": target_type,
        "target_id": target_id,
        "details": canonical_json(details),
        "request_id": actor.request_id,
    }
    values["mac"] = event_mac(ctx, values)
    return values


def event_mac(ctx: ServiceContext, values: dict[str, Any] | AuditEvent) -> str:
    """The HMAC of an event's content (not its id or chain fields, unknown when it is written)."""
    row = values if isinstance(values, dict) else {name: getattr(values, name) for name in ("occurred_at", *_MAC_FIELDS)}
    parts = [rfc3339(row["occurred_at"]).encode()] + [_NONE if row[n] is None else row[n].encode() for n in _MAC_FIELDS]
    return ctx.integrity.mac(MAC_PURPOSE, *parts).hex()


_NONE = b"\xff"  # never the UTF-8 of a string: None and "" differ


_MAC_FIELDS = ("client_name", "acting_login_id", "action", "target_type", "target_id", "details", "request_id")


def authentic(ctx: ServiceContext, ev: AuditEvent) -> bool:
    return ev.mac is not None and hmac.compare_digest(ev.mac, event_mac(ctx, ev))


def event_hash(ev: AuditEvent, chain_index: int, prev_hash: str) -> str:
    body = canonical_json(
        {
            "chain_index": chain_index,
            "prev_hash": prev_hash,
            "id": ev.id,
            "occurred_at": ev.occurred_at.isoformat(),
            "client_name": ev.client_name,
            "acting_login_id": ev.acting_login_id,
            "action": ev.action,
            "target_type": ev.target_type,
            "target_id": ev.target_id,
            "details": ev.details,
            "request_id": ev.request_id,
        }
    )
    return hashlib.sha256(body.encode("utf-8")).hexdigest()


def seal_pending(ctx: ServiceContext, *, wait: bool = False, batch: int = 5000) -> int:
    """Chain every unsealed event with a valid MAC, oldest id first; one without stays unsealed
    (refused, logged). Without `wait`, gives up at once if another process is sealing (it will
    pick up our events, or the next call will). Returns how many were sealed."""
    sealed, after = 0, 0
    while True:
        refused: list[int] = []
        with transaction(ctx.sessions) as session:
            if not audit_log.take_seal_lock(session, wait=wait):
                return sealed
            index, prev = audit_log.chain_head(session) or (0, GENESIS)
            pending = audit_log.unsealed(session, batch, after_id=after)
            for ev in pending:
                if not authentic(ctx, ev):
                    refused.append(ev.id)
                    continue
                index += 1
                ev.chain_index, ev.prev_hash = index, prev
                ev.hash = prev = event_hash(ev, index, prev)
            sealed += len(pending) - len(refused)
        if refused:
            log.error(
                "audit: %s event(s) without a valid authenticator left unsealed (ids %s): not written by the service",
                len(refused),
                refused[:20],
            )
        if len(pending) < batch:
            return sealed
        after = pending[-1].id


@dataclass(frozen=True)
class VerifyResult:
    ok: bool
    checked: int
    unsealed: int
    broken_event_id: int | None = None
    problem: str | None = None


def verify_chain(ctx: ServiceContext) -> VerifyResult:
    """Recompute the chain from the start; report the first event that does not match, then any
    event left unsealed for want of a valid authenticator."""
    seal_pending(ctx, wait=True)
    checked, prev, expected_index, macs_on = 0, GENESIS, 1, False
    with reading(ctx.sessions) as session:
        unsealed = audit_log.count_unsealed(session)
        for ev in audit_log.sealed_in_order(session):
            macs_on = macs_on or ev.mac is not None  # from the first event written with one (0013)
            problem = None
            if ev.chain_index != expected_index:
                problem = f"chain index {ev.chain_index} where {expected_index} was expected (event missing)"
            elif ev.prev_hash != prev:
                problem = "prev_hash does not match the previous event's hash"
            elif ev.hash != event_hash(ev, expected_index, prev):
                problem = "hash does not match the event's content (edited)"
            elif macs_on and not authentic(ctx, ev):
                problem = "the event's authenticator (MAC) does not match its content (edited, or not written by the service)"
            if problem:
                return VerifyResult(False, checked, unsealed, ev.id, problem)
            checked += 1
            prev = ev.hash or ""
            expected_index += 1
    refused = unauthenticated_unsealed(ctx)
    if refused:
        problem = f"{len(refused)} event(s) without a valid authenticator left unsealed (not written by the service)"
        return VerifyResult(False, checked, unsealed, refused[0], problem)
    return VerifyResult(True, checked, unsealed)


def unauthenticated_unsealed(ctx: ServiceContext, limit: int = 1000) -> list[int]:
    """Ids of unsealed events (of the oldest `limit`) without a valid MAC: what the sealer
    refused. Events a request is committing right now have theirs (metric
    ca_audit_unauthenticated_events, alert CaAuditEventRefused)."""
    with reading(ctx.sessions) as session:
        return [ev.id for ev in audit_log.unsealed(session, limit) if not authentic(ctx, ev)]


def event_dict(ev: AuditEvent) -> dict[str, Any]:
    return {
        "id": ev.id,
        "occurred_at": ev.occurred_at,
        "client_name": ev.client_name,
        "acting_login_id": ev.acting_login_id,
        "action": ev.action,
        "target_type": ev.target_type,
        "target_id": ev.target_id,
        "details": json.loads(ev.details),
        "request_id": ev.request_id,
        "chain_index": ev.chain_index,
        "prev_hash": ev.prev_hash,
        "hash": ev.hash,
    }


def list_events(ctx: ServiceContext, *, after_id: int, limit: int) -> tuple[list[dict[str, Any]], int | None]:
    with reading(ctx.sessions) as session:
        rows = audit_log.after_id(session, after_id, limit + 1)
    items = [event_dict(ev) for ev in rows[:limit]]
    next_after = items[-1]["id"] if len(rows) > limit else None
    return items, next_after


def iter_events(ctx: ServiceContext) -> Iterator[dict[str, Any]]:
    after: int | None = 0
    while after is not None:
        items, after = list_events(ctx, after_id=after, limit=1000)
        yield from items
