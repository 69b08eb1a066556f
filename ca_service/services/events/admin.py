"""Deliveries as the help desk sees them: list (all or failed), retry one (audited), and the age
of the oldest undelivered event (a metrics gauge, alerted)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

from ca_service.context import Actor, ServiceContext
from ca_service.errors import Conflict, NotFound
from ca_service.services.audit.change import change
from ca_service.services.events.delivery import kick
from ca_service.store import webhooks as store
from ca_service.store.db import reading
from ca_service.store.models import WebhookDelivery, WebhookEvent


@dataclass(frozen=True)
class DeliveryView:
    id: int
    event_id: str
    type: str
    login_id: str
    url: str
    status: str
    attempts: int
    occurred_at: datetime
    next_attempt_at: datetime | None
    finished_at: datetime | None
    last_status: int | None
    last_error: str | None

    def as_dict(self) -> dict[str, object]:
        return {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in self.__dict__.items()}


def list_deliveries(ctx: ServiceContext, *, failed_only: bool = False, limit: int = 200) -> list[DeliveryView]:
    with reading(ctx.sessions) as session:
        rows = store.listing(session, status=store.FAILED if failed_only else None, limit=limit)
        return [_view_of(d, e) for d, e in rows]


def retry(ctx: ServiceContext, actor: Actor, delivery_id: int) -> DeliveryView:
    """Put a failed delivery back: pending, attempts from zero, a new retry period; audited."""
    with change(ctx, actor) as uow:
        session = uow.session
        row = store.lock_delivery(session, delivery_id)
        if row is None:
            raise NotFound(f"no webhook delivery {delivery_id}", code="delivery-not-found")
        if row.status != store.FAILED:
            raise Conflict(
                f"webhook delivery {delivery_id} is {row.status}; only a failed one is retried", code="delivery-not-failed"
            )
        now = ctx.clock.now()
        row.status, row.attempts, row.created_at, row.next_attempt_at, row.finished_at = store.PENDING, 0, now, now, None
        event = store.event(session, row.event_seq)
        uow.audit(
            "webhook.delivery_retried",
            target_type="webhook_delivery",
            target_id=str(delivery_id),
            event_id=event.event_id,
            event_type=event.type,
            url=row.url,
        )
        stream, url = row.stream, row.url
    kick(ctx, stream, url)
    return _view(ctx, delivery_id)


def _view_of(d: WebhookDelivery, e: WebhookEvent) -> DeliveryView:
    pending = d.status == store.PENDING
    return DeliveryView(
        id=d.id, event_id=e.event_id, type=e.type, login_id=d.stream, url=d.url, status=d.status, attempts=d.attempts,
        occurred_at=e.occurred_at, next_attempt_at=d.next_attempt_at if pending else None, finished_at=d.finished_at,
        last_status=d.last_status, last_error=d.last_error,
    )  # fmt: skip


def _view(ctx: ServiceContext, delivery_id: int) -> DeliveryView:
    with reading(ctx.sessions) as session:
        row = store.get_delivery(session, delivery_id)
        assert row is not None
        return _view_of(row, store.event(session, row.event_seq))


def oldest_undelivered_seconds(ctx: ServiceContext) -> float:
    """Age of the oldest event some receiver has not got yet (0 when none)."""
    with reading(ctx.sessions) as session:
        oldest = store.oldest_pending_created(session)
    return 0.0 if oldest is None else max(0.0, (ctx.clock.now() - oldest).total_seconds())


def event_body(ctx: ServiceContext, delivery_id: int) -> dict[str, object]:
    with reading(ctx.sessions) as session:
        row = store.get_delivery(session, delivery_id)
        if row is None:
            raise NotFound(f"no webhook delivery {delivery_id}", code="delivery-not-found")
        return dict(json.loads(store.event(session, row.event_seq).body))
