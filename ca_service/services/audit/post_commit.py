"""What a state change does right after its transaction commits (services/audit/change.py calls
it): seal the audit events into the hash chain and relay outbox entries to RQ. Neither is on the
critical path of correctness: both are retried by periodic jobs if they fail here.

Sealing is throttled per process (at most once per SEAL_INTERVAL seconds): one seal chains every
pending event, so under load a handful of seals per second cover thousands of changes, and the
write path never waits on the chain. `audit verify` and the scheduler seal whatever is left.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field

from ca_service.context import ServiceContext
from ca_service.outbox import relay
from ca_service.services.audit import trail as audit

log = logging.getLogger("ca_service.post_commit")
SEAL_INTERVAL = 0.5


@dataclass
class SealThrottle:
    """When this process last sealed the audit chain after a commit (ctx.local)."""

    last: float | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)


def _seal_due(ctx: ServiceContext) -> bool:
    now = time.monotonic()
    throttle = ctx.local(SealThrottle)
    with throttle.lock:
        if throttle.last is not None and now - throttle.last < SEAL_INTERVAL:
            return False
        throttle.last = now
    return True


def after_commit(ctx: ServiceContext, *, seal: bool = True, outbox: bool = False) -> None:
    """Seal (if `seal`, throttled), then relay (if `outbox`); never raises."""
    if seal and _seal_due(ctx):
        try:
            audit.seal_pending(ctx)
        except Exception:
            log.exception("audit sealing failed; the periodic sealing job will retry")
    if outbox:
        try:
            relay.dispatch_pending(ctx)
        except Exception:
            log.exception("outbox relay failed; the periodic sweep will retry")
