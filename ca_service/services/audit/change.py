"""One unit of work: a state change's transaction, its audit events and outbox entries, and what
follows its commit, in one place.

    with change(ctx, actor) as uow:
        row = store.something(uow.session, ...)
        uow.audit("thing.changed", target_type="thing", target_id=row.id, old=..., new=...)
        uow.outbox(outbox.CRL_PUBLISH, reason="...", serial=row.serial)
        uow.on_commit(ocsp_cache.invalidate, ctx, row.issuer_id, row.serial)

If the block raises, the transaction rolls back and nothing after the commit runs. Once it has
committed, in this order: the callbacks registered with `on_commit` (the change's own follow-ups,
such as dropping cached OCSP answers, which bound how long a revoked certificate reads as good),
then post_commit.after_commit: sealing the audit chain (throttled) if the change wrote an audit
event, and relaying outbox entries to RQ if it wrote any. What the change wrote decides; no caller
says it. Nothing after the commit raises: the change is done, a failure there is logged.

It lives in `audit`, the lowest capability, so that every capability (events included) can take a
unit of work. `store.db.transaction` stays for store-level work with no audit or outbox of its
own (sealing, the relay, leases of a delivery) and `reading` for reads.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, ParamSpec

from ca_service.context import Actor, ServiceContext
from ca_service.outbox import records as outbox_records
from ca_service.services.audit import post_commit, trail
from ca_service.store.db import Tx, transaction
from ca_service.store.models import OutboxEntry

log = logging.getLogger("ca_service.change")
P = ParamSpec("P")


class Change:
    """The open unit of work `change()` yields: `session` for the store functions, and what the
    change records beside its rows."""

    def __init__(self, ctx: ServiceContext, actor: Actor | None, session: Tx) -> None:
        self.ctx = ctx
        self.actor = actor  # None: a system change that audits nothing (the expiry scan)
        self.session = session
        self.audited = False  # an audit event was written: seal after the commit
        self.queued = False  # an outbox entry was written: relay after the commit
        self._on_commit: list[Callable[[], object]] = []

    def _auditor(self) -> Actor:
        if self.actor is None:
            raise TypeError("a change without an actor audits nothing: give change() the actor")
        return self.actor

    def audit(self, action: str, /, *, target_type: str, target_id: str, **details: Any) -> None:
        """Write one audit event in this transaction, by the change's actor."""
        trail.record(self.session, self.ctx, self._auditor(), action, target_type, target_id, **details)
        self.audited = True

    def audit_row(self, action: str, /, *, target_type: str, target_id: str, **details: Any) -> dict[str, Any]:
        """The row of one audit event, for a store function that inserts it together with the
        change it records (an issuance: one round trip); it is written in this transaction."""
        self.audited = True
        return trail.event(self.ctx, self._auditor(), action, target_type, target_id, **details)

    def outbox(self, kind: str, /, *, for_request: bool = True, **payload: Any) -> OutboxEntry:
        """One outbox entry in this transaction, relayed to RQ right after the commit (else by the
        sweep). `for_request=False`: the entry carries no request id (a webhook wake-up serves
        every pending event of its stream, not this request's alone)."""
        entry = outbox_records.add(self.session, self.ctx, self.actor if for_request else None, kind, **payload)
        self.queued = True
        return entry

    def outbox_many(self, kind: str, payloads: list[dict[str, Any]]) -> None:
        """Many entries of one kind in one INSERT (the expiry scan's emails)."""
        if payloads:
            outbox_records.add_many(self.session, self.ctx, self.actor, kind, payloads)
            self.queued = True

    def on_commit(self, fn: Callable[P, object], /, *args: P.args, **kwargs: P.kwargs) -> None:
        """Call `fn(*args, **kwargs)` once this change has committed (never after a rollback)."""
        self._on_commit.append(lambda: fn(*args, **kwargs))

    def _committed(self) -> None:
        for callback in self._on_commit:
            try:
                callback()
            except Exception:
                log.exception("a step after a committed change failed")
        if self.audited or self.queued:
            post_commit.after_commit(self.ctx, seal=self.audited, outbox=self.queued)


@contextmanager
def change(ctx: ServiceContext, actor: Actor | None) -> Iterator[Change]:
    """A unit of work by `actor`: commit on success and run what follows the commit; on any
    exception roll back, run nothing and re-raise."""
    with transaction(ctx.sessions) as session:
        uow = Change(ctx, actor, session)
        yield uow
    uow._committed()
