"""Writing outbox entries inside the caller's transaction."""

from __future__ import annotations

import json
from typing import Any

from ca_service.context import Actor, ServiceContext
from ca_service.store import outbox as store
from ca_service.store.db import Tx
from ca_service.store.models import OutboxEntry

CRL_PUBLISH = "crl.publish"
NOTICE_EMAIL = "notice.email"


def add(session: Tx, ctx: ServiceContext, actor: Actor | None, kind: str, **payload: Any) -> OutboxEntry:
    entry = OutboxEntry(
        created_at=ctx.clock.now(),
        kind=kind,
        payload=json.dumps(payload, sort_keys=True, default=str),
        request_id=actor.request_id if actor else None,
        attempts=0,
    )
    return store.add(session, entry)


def add_many(session: Tx, ctx: ServiceContext, actor: Actor | None, kind: str, payloads: list[dict[str, Any]]) -> None:
    """Many entries of one kind in one INSERT (the expiry scan queues thousands of emails)."""
    now = ctx.clock.now()
    request_id = actor.request_id if actor else None
    store.add_many(
        session,
        [
            {"created_at": now, "kind": kind, "payload": json.dumps(p, sort_keys=True), "request_id": request_id, "attempts": 0}
            for p in payloads
        ],
    )
