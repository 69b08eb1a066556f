"""Where each kind of outbox entry goes: its RQ queue and its job function (the function object
itself, not a dotted string).

The job functions live in services (services/background/jobs.py, which declares the table), and
the outbox must not import services: so the table is installed here explicitly, once, by every
process that relays (`register_routes()`, called by the API app, the CLI, the scheduler and every
job's context). A kind with no route is an error the relay reports, never a silent skip."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ca_service.constants import QueueName


@dataclass(frozen=True)
class Route:
    queue: QueueName
    job: Callable[..., Any]
    retried: bool = False  # RQ retries it with the mail retry intervals (CA_MAIL_RETRY_INTERVALS)


class NoRoute(LookupError):
    """An entry kind no route was installed for: this process never called register_routes(),
    or the kind was written by a newer release than the one relaying it."""


_installed: dict[str, Route] = {}


def install(table: Mapping[str, Route]) -> None:
    """Make `table` the process's routes (idempotent: installing the same table again is a no-op).
    One rebinding, never clear-then-fill: every job installs the routes, and a thread relaying at
    that moment (the webhook deliveries' retries) must never see an empty table."""
    global _installed
    _installed = dict(table)


def route(kind: str) -> Route:
    try:
        return _installed[kind]
    except KeyError:
        installed = ", ".join(sorted(_installed)) or "none: register_routes() was not called"
        raise NoRoute(f"no route for outbox entries of kind {kind!r} (routes installed: {installed})") from None
