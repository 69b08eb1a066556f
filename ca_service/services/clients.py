"""API clients: bearer tokens shown once, stored as SHA-256, compared in constant time."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass
from datetime import datetime

from ca_service.constants import CLIENT_ROLES
from ca_service.context import Actor, ServiceContext
from ca_service.errors import Conflict, InvalidInput, NotFound
from ca_service.services import audit
from ca_service.services.post_commit import after_commit
from ca_service.store import clients as store
from ca_service.store.db import reading, transaction
from ca_service.store.errors import DuplicateName
from ca_service.store.models import ApiClient

ROLES = CLIENT_ROLES
TOKEN_PREFIX = "cas_"  # noqa: S105 - a marker, not a secret
_CACHE_SECONDS = 5.0  # a disabled client is refused within this many seconds in every process


@dataclass(frozen=True)
class ClientInfo:
    client_id: str
    name: str
    role: str
    created_at: datetime
    disabled_at: datetime | None


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _info(row: ApiClient) -> ClientInfo:
    return ClientInfo(row.client_id, row.name, row.role, row.created_at, row.disabled_at)


def create_client(ctx: ServiceContext, actor: Actor, name: str, role: str) -> tuple[ClientInfo, str]:
    if role not in ROLES:
        raise InvalidInput(f"role must be one of {', '.join(ROLES)}")
    name = name.strip()
    if not 1 <= len(name) <= 100:
        raise InvalidInput("name must be 1 to 100 characters")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    row = ApiClient(client_id=secrets.token_hex(8), name=name, role=role, token_hash=_hash(token), created_at=ctx.clock.now())
    try:
        with transaction(ctx.sessions) as session:
            store.add(session, row)
            audit.record(session, ctx, actor, "api_client.created", "api_client", row.client_id, name=name, role=role)
    except DuplicateName:
        raise Conflict(f"an API client named {name!r} already exists", code="client-exists") from None
    after_commit(ctx)
    return _info(row), token


def list_clients(ctx: ServiceContext) -> list[ClientInfo]:
    with reading(ctx.sessions) as session:
        return [_info(r) for r in store.all_clients(session)]


def disable_client(ctx: ServiceContext, actor: Actor, name_or_id: str) -> ClientInfo:
    with transaction(ctx.sessions) as session:
        row = store.by_name_or_id(session, name_or_id, for_update=True)
        if row is None:
            raise NotFound(f"no API client {name_or_id!r}", code="client-not-found")
        if row.disabled_at is None:
            row.disabled_at = ctx.clock.now()
            audit.record(session, ctx, actor, "api_client.disabled", "api_client", row.client_id, name=row.name)
    after_commit(ctx)
    return _info(row)


def authenticate(ctx: ServiceContext, token: str) -> ClientInfo | None:
    """The enabled client owning `token`, or None. Cached briefly per process (hot path)."""
    if not token.startswith(TOKEN_PREFIX) or len(token) > 200:
        return None
    digest = _hash(token)
    cache = ctx.auth_cache
    hit = cache.get(digest)
    now = time.monotonic()
    if hit is not None and hit[0] > now:
        info, stored = hit[1], hit[2]
    else:
        with reading(ctx.sessions) as session:
            row = store.by_token_hash(session, digest)
        info = _info(row) if row is not None and row.disabled_at is None else None
        stored = row.token_hash if row is not None else ""
        if len(cache) > 10_000:
            cache.clear()
        cache[digest] = (now + _CACHE_SECONDS, info, stored)
    if info is None or not hmac.compare_digest(stored, digest):
        return None
    return info
