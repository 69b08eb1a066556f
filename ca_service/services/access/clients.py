"""API clients: bearer tokens shown once, stored as SHA-256, compared in constant time.

A token may expire (`expires_at`); `rotate_client` issues a new token and lets the replaced one
work until the end of a grace period, so a front end can switch without an outage."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from ca_service.constants import CLIENT_ROLES
from ca_service.context import Actor, ServiceContext
from ca_service.errors import Conflict, InvalidInput, NotFound
from ca_service.services.audit.change import change
from ca_service.store import clients as store
from ca_service.store.db import Tx, reading
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
    expires_at: datetime | None = None
    previous_token_valid_until: datetime | None = None


_Lookup = tuple[float, ClientInfo | None, str, datetime | None]


class TokenCache:
    """This process's recent token lookups (`ctx.local(TokenCache)`): token digest -> (cache
    deadline, the client, the stored hash it matched, when that token stops working)."""

    MAX_ENTRIES = 10_000

    def __init__(self) -> None:
        self.entries: dict[str, _Lookup] = {}

    def fresh(self, digest: str, now: float) -> _Lookup | None:
        hit = self.entries.get(digest)
        return hit if hit is not None and hit[0] > now else None

    def put(self, digest: str, lookup: _Lookup) -> None:
        if len(self.entries) > self.MAX_ENTRIES:
            self.entries.clear()
        self.entries[digest] = lookup


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _info(row: ApiClient) -> ClientInfo:
    return ClientInfo(
        row.client_id, row.name, row.role, row.created_at, row.disabled_at, row.expires_at, row.previous_token_expires_at
    )


def _lifetime(expires_in: timedelta | None) -> None:
    if expires_in is not None and expires_in <= timedelta(0):
        raise InvalidInput("the token's lifetime must be positive")


def create_client(
    ctx: ServiceContext, actor: Actor, name: str, role: str, expires_in: timedelta | None = None
) -> tuple[ClientInfo, str]:
    _lifetime(expires_in)
    if role not in ROLES:
        raise InvalidInput(f"role must be one of {', '.join(ROLES)}")
    name = name.strip()
    if not 1 <= len(name) <= 100:
        raise InvalidInput("name must be 1 to 100 characters")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    now = ctx.clock.now()
    expires_at = now + expires_in if expires_in is not None else None
    try:
        with change(ctx, actor) as uow:
            row = store.add(
                uow.session,
                client_id=secrets.token_hex(8),
                name=name,
                role=role,
                token_hash=_hash(token),
                created_at=now,
                expires_at=expires_at,
            )
            uow.audit(
                "api_client.created",
                target_type="api_client",
                target_id=row.client_id,
                name=name,
                role=role,
                expires_at=expires_at.isoformat() if expires_at else None,
            )
    except DuplicateName:
        raise Conflict(f"an API client named {name!r} already exists", code="client-exists") from None
    return _info(row), token


def list_clients(ctx: ServiceContext) -> list[ClientInfo]:
    with reading(ctx.sessions) as session:
        return [_info(r) for r in store.all_clients(session)]


def _locked(session: Tx, name_or_id: str) -> ApiClient:
    row = store.by_name_or_id(session, name_or_id, for_update=True)
    if row is None:
        raise NotFound(f"no API client {name_or_id!r}", code="client-not-found")
    return row


def rotate_client(
    ctx: ServiceContext, actor: Actor, name_or_id: str, *, grace: timedelta | None = None, expires_in: timedelta | None = None
) -> tuple[ClientInfo, str]:
    """A new token for the client; the current one keeps working for `grace` (default
    CA_TOKEN_ROTATION_GRACE_HOURS), then stops. A token still in an earlier grace period stops
    at once. The new token expires after `expires_in`, else when the client's token did."""
    _lifetime(expires_in)
    grace = timedelta(hours=ctx.settings.token_rotation_grace_hours) if grace is None else grace
    if grace < timedelta(0):
        raise InvalidInput("the grace period cannot be negative")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    now = ctx.clock.now()
    with change(ctx, actor) as uow:
        row = _locked(uow.session, name_or_id)
        if row.disabled_at is not None:
            raise Conflict(f"API client {row.name} is disabled; create a new one", code="client-disabled")
        row.previous_token_hash, row.previous_token_expires_at = row.token_hash, now + grace
        if row.expires_at is not None and row.expires_at < row.previous_token_expires_at:
            row.previous_token_expires_at = row.expires_at  # never longer than the old token's own life
        row.token_hash = _hash(token)
        if expires_in is not None:
            row.expires_at = now + expires_in
        uow.audit(
            "api_client.rotated",
            target_type="api_client",
            target_id=row.client_id,
            name=row.name,
            previous_token_valid_until=row.previous_token_expires_at.isoformat(),
            expires_at=row.expires_at.isoformat() if row.expires_at else None,
        )
    return _info(row), token


def disable_client(ctx: ServiceContext, actor: Actor, name_or_id: str) -> ClientInfo:
    with change(ctx, actor) as uow:
        row = _locked(uow.session, name_or_id)
        if row.disabled_at is None:
            row.disabled_at = ctx.clock.now()
            uow.audit("api_client.disabled", target_type="api_client", target_id=row.client_id, name=row.name)
    return _info(row)


def authenticate(ctx: ServiceContext, token: str) -> ClientInfo | None:
    """The enabled client owning `token` (its current one, or the one it replaced while that is in
    its grace period), unexpired, or None. Cached briefly per process (hot path); expiry is
    checked against the clock on every call."""
    if not token.startswith(TOKEN_PREFIX) or len(token) > 200:
        return None
    digest = _hash(token)
    cache = ctx.local(TokenCache)
    now = time.monotonic()
    hit = cache.fresh(digest, now)
    if hit is not None:
        info, stored, valid_until = hit[1], hit[2], hit[3]
    else:
        with reading(ctx.sessions) as session:
            row = store.by_token_hash(session, digest)
        info = _info(row) if row is not None and row.disabled_at is None else None
        stored, valid_until = "", None
        if row is not None:
            previous = row.token_hash != digest
            stored = (row.previous_token_hash or "") if previous else row.token_hash
            valid_until = row.previous_token_expires_at if previous else row.expires_at
        cache.put(digest, (now + _CACHE_SECONDS, info, stored, valid_until))
    if info is None or not hmac.compare_digest(stored, digest):
        return None
    if valid_until is not None and ctx.clock.now() >= valid_until:
        return None
    return info
