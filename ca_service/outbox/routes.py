"""Where each kind of outbox entry goes: its RQ queue and its job function (the function object
itself, not a dotted string). The job functions live in services (services/background/jobs.py), which the
outbox must not import; they register here when that module is imported (services/__init__.py
imports it, so every process that commits a change has the routes before it relays)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ca_service.constants import QueueName


@dataclass(frozen=True)
class Route:
    queue: QueueName
    job: Callable[..., Any]
    retried: bool = False  # RQ retries it with the mail retry intervals (CA_MAIL_RETRY_INTERVALS)


_ROUTES: dict[str, Route] = {}


def register(kind: str, queue: QueueName, job: Callable[..., Any], *, retried: bool = False) -> None:
    _ROUTES[kind] = Route(queue, job, retried)


def route(kind: str) -> Route | None:
    return _ROUTES.get(kind)
