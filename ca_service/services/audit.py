"""The audit trail: one event per state change, in the change's own transaction, then sealed
into a SHA-256 hash chain by whoever gets the sealing lock first (never on the write path)."""

from __future__ import annotations

import hashlib
import json
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


def _json_default(value: Any) -> str:
    return rfc3339(value) if isinstance(value, datetime) else str(value)


def canonical_json(value: Any) -> str:
    """Sorted keys, no spaces, UTF-8; datetimes in RFC 3339 UTC (the API's format)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=_json_default)


def record(session: Tx, ctx: ServiceContext, actor: Actor, action: str, target_type: str, target_id: str, **details: Any) -> None:
    """Write one audit event in the caller's transaction."""
    audit_log.insert_event(session, event(ctx, actor, action, target_type, target_id, **details))


def event(ctx: ServiceContext, actor: Actor, action: str, target_type: str, target_id: str, **details: Any) -> dict[str, Any]:
    """The row of one audit event (store.audit_log.EVENT_COLUMNS), for a store function that
    inserts it together with the change it records (under dual control, with both operators)."""
    if actor.requested_by is not None:
        details = {**details, "requested_by": actor.requested_by, "approved_by": actor.client_name}
    return {
        "occurred_at": ctx.clock.now(),
        "client_name": actor.client_name,
        "acting_login_id": actor.acting_login_id,
        "action": action,
        "target_type": target_type,
        "target_id": target_id,
        "details": canonical_json(details),
        "request_id": actor.request_id,
    }


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
    """Chain every unsealed event, oldest id first. Without `wait`, gives up at once if another
    process is sealing (it will pick up our events, or the next call will). Returns how many."""
    sealed = 0
    while True:
        with transaction(ctx.sessions) as session:
            if not audit_log.take_seal_lock(session, wait=wait):
                return sealed
            index, prev = audit_log.chain_head(session) or (0, GENESIS)
            pending = audit_log.unsealed(session, batch)
            for ev in pending:
                index += 1
                ev.chain_index, ev.prev_hash = index, prev
                ev.hash = prev = event_hash(ev, index, prev)
            sealed += len(pending)
        if len(pending) < batch:
            return sealed


@dataclass(frozen=True)
class VerifyResult:
    ok: bool
    checked: int
    unsealed: int
    broken_event_id: int | None = None
    problem: str | None = None


def verify_chain(ctx: ServiceContext) -> VerifyResult:
    """Recompute the chain from the start; report the first event that does not match."""
    seal_pending(ctx, wait=True)
    checked, prev, expected_index = 0, GENESIS, 1
    with reading(ctx.sessions) as session:
        unsealed = audit_log.count_unsealed(session)
        for ev in audit_log.sealed_in_order(session):
            problem = None
            if ev.chain_index != expected_index:
                problem = f"chain index {ev.chain_index} where {expected_index} was expected (event missing)"
            elif ev.prev_hash != prev:
                problem = "prev_hash does not match the previous event's hash"
            elif ev.hash != event_hash(ev, expected_index, prev):
                problem = "hash does not match the event's content (edited)"
            if problem:
                return VerifyResult(False, checked, unsealed, ev.id, problem)
            checked += 1
            prev = ev.hash or ""
            expected_index += 1
    return VerifyResult(True, checked, unsealed)


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
