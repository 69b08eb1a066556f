"""Bearer-token authentication and role checks, done before request validation."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from flask import current_app, g, request

from ca_service.context import Actor
from ca_service.errors import NotPermitted, TooManyRequests, Unauthenticated
from ca_service.services.access import throttle as auth_throttle
from ca_service.services.access.clients import ClientInfo, authenticate

F = TypeVar("F", bound=Callable[..., Any])
PUBLIC = "public"


class TooManyFailures(TooManyRequests):
    code, title = "too-many-authentication-failures", "Too many failed authentications"


class Forbidden(NotPermitted):
    code, title = "forbidden", "Forbidden for this API client's role"


def roles(*allowed: str) -> Callable[[F], F]:
    """Mark a view with the roles that may call it (DESIGN §4 table); `public` for none."""

    def mark(func: F) -> F:
        func._roles = allowed  # type: ignore[attr-defined]
        return func

    return mark


def check_request() -> None:
    """before_request hook: authenticate and authorise according to the view's `roles`."""
    view = current_app.view_functions.get(request.endpoint or "")
    allowed: tuple[str, ...] | None = getattr(view, "_roles", None)
    if view is None or allowed is None or PUBLIC in allowed:
        return
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated("send Authorization: Bearer <token>")
    ctx = current_app.extensions["ca_service"]
    address = request.remote_addr or "unknown"  # the peer, or what a trusted proxy says (api/proxy.py)
    client = authenticate(ctx, token.strip())
    if client is None:
        # Only a bad token is throttled: a valid one is never refused, so bad tokens from a shared
        # address (NAT, a bug in the front end) cannot lock the front end out.
        _refuse_if_blocked(auth_throttle.blocked_for(ctx, address))
        _refuse_if_blocked(auth_throttle.note_failure(ctx, address))  # past the limit: 429, not 401
        raise Unauthenticated("the token is unknown, expired, or its API client is disabled")
    if client.role not in allowed:
        raise Forbidden(f"role {client.role} may not call this endpoint (allowed: {', '.join(allowed)})")
    g.client = client


def _refuse_if_blocked(wait: int | None) -> None:
    if wait is not None:
        raise TooManyFailures("too many requests with a bad token from this address; try again later", retry_after=wait)


def current_client() -> ClientInfo:
    client: ClientInfo = g.client
    return client


def actor(acting_login_id: str | None = None) -> Actor:
    client = current_client()
    return Actor(client_name=client.name, role=client.role, acting_login_id=acting_login_id, request_id=g.get("request_id"))
