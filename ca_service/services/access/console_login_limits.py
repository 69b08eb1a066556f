"""Limits on console logins, decided before any password is hashed.

argon2 ran for every attempt, unknown usernames included, with no per-address limit (a few threads
from one address slowed the front end's login checks many times over), and five wrong
passwords from anywhere locked a real operator out for 15 minutes, while unknown usernames never
locked (an oracle for which accounts exist). Now:

- **Per address** (the peer, or what a trusted proxy says): at most
  CA_CONSOLE_LOGIN_ATTEMPTS_PER_MINUTE attempts in a fixed one-minute window are admitted, each
  counted as it arrives (so concurrent ones count each other); a successful login gives its
  attempt back. Past the limit: 429 `login-attempts-limited` with no hashing and no database
  write.
- **Per address and username**, known or not: CA_CONSOLE_LOCKOUT_FAILURES failed attempts lock
  that pair (not the account) for CA_CONSOLE_LOCKOUT_MINUTES, doubling with each lock-out of the
  pair within a day (backoff, at most a day). The operator logs in from their own desk while an
  outsider's address is locked; an unknown username locks exactly like a known one.
- `operators reset` clears every lock of the account.

The counters live in Redis (every worker and replica shares them, and they expire by
themselves). When Redis is not configured or unreachable each process keeps its own (limits per
process instead of per deployment): the limits never fail open.
"""

from __future__ import annotations

import hashlib
import logging
import re
import threading
import time
from datetime import timedelta
from typing import cast

from ca_service.context import REDIS_ERRORS, ServiceContext

log = logging.getLogger("ca_service.console")
WINDOW_SECONDS = 60
_DAY = 86_400
_PREFIX = "ca:console-login:"


def _address_key(address: str) -> str:
    return f"{_PREFIX}address:{address}"


_NAME = re.compile(r"[a-z][a-z0-9._-]{1,63}")  # operators.USERNAME: no glob or ':' in a key


def _pair_key(kind: str, address: str, username: str) -> str:
    """Username before address, so reset() finds an account's keys; a name no operator can have
    (an outsider's guess) goes in as its hash."""
    name = username if _NAME.fullmatch(username) else "h-" + hashlib.sha256(username.encode("utf-8", "replace")).hexdigest()
    return f"{_PREFIX}{kind}:{name}:{address}"


class LoginCounters:
    """A process's own counters (`ctx.local` state), used while Redis cannot be: key -> (value,
    expires at)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.values: dict[str, tuple[int, float]] = {}

    def _live(self, key: str, now: float) -> tuple[int, float] | None:
        found = self.values.get(key)
        return found if found is not None and found[1] > now else None

    def incr(self, key: str, ttl: int) -> int:
        now = time.monotonic()
        with self.lock:
            if len(self.values) > 100_000:  # junk from a wide attack: keep what is still running
                self.values = {k: v for k, v in self.values.items() if v[1] > now}
            found = self._live(key, now)
            value = (found[0] if found else 0) + 1
            self.values[key] = (value, found[1] if found else now + ttl)
            return value

    def decr(self, key: str) -> int:
        with self.lock:
            found = self._live(key, time.monotonic())
            if found is not None:
                self.values[key] = (max(0, found[0] - 1), found[1])
        return 0

    def ttl(self, key: str) -> int:
        now = time.monotonic()
        with self.lock:
            found = self._live(key, now)
        return int(found[1] - now) + 1 if found else 0

    def put(self, key: str, value: int, ttl: int) -> int:
        with self.lock:
            self.values[key] = (value, time.monotonic() + ttl)
        return 0

    def delete(self, key: str) -> int:
        with self.lock:
            self.values.pop(key, None)
        return 0

    def delete_account(self, name: str) -> int:
        with self.lock:
            for key in [k for k in self.values if f":{name}:" in k]:
                del self.values[key]
        return 0


class _Redis:
    def __init__(self, ctx: ServiceContext) -> None:
        self.conn = ctx.redis()

    def incr(self, key: str, ttl: int) -> int:
        pipe = self.conn.pipeline(transaction=True)
        pipe.incr(key)
        pipe.expire(key, ttl, nx=True)
        return int(pipe.execute()[0])

    def decr(self, key: str) -> int:
        if int(cast(int, self.conn.decr(key))) < 0:  # the window closed in between
            self.conn.delete(key)
        return 0

    def ttl(self, key: str) -> int:
        return max(0, int(cast(int, self.conn.ttl(key))))

    def put(self, key: str, value: int, ttl: int) -> int:
        self.conn.set(key, value, ex=ttl)
        return 0

    def delete(self, key: str) -> int:
        self.conn.delete(key)
        return 0

    def delete_account(self, name: str) -> int:
        keys = list(self.conn.scan_iter(match=f"{_PREFIX}*:{name}:*", count=1000))
        if keys:
            self.conn.delete(*keys)
        return 0


def _store(ctx: ServiceContext) -> LoginCounters | _Redis:
    return _Redis(ctx) if ctx.settings.redis_url is not None else ctx.local(LoginCounters)


def _run(ctx: ServiceContext, action: str, *args: str | int) -> int:
    """`action` on Redis, or on the process's own counters when Redis fails (never fail open)."""
    try:
        return int(getattr(_store(ctx), action)(*args))
    except REDIS_ERRORS as exc:
        log.warning("console login limits: per process while Redis is unavailable (%s)", type(exc).__name__)
        return int(getattr(ctx.local(LoginCounters), action)(*args))


def admit(ctx: ServiceContext, address: str, username: str) -> tuple[str, int] | None:
    """Count this attempt against `address`. None if it may go on to the password check, else
    (why, seconds to wait): "address" (too many attempts from it) or "locked" (this address
    failed too often for this username). Costs no hashing and no database access."""
    if _run(ctx, "incr", _address_key(address), WINDOW_SECONDS) > ctx.settings.console_login_attempts_per_minute:
        return "address", max(1, _run(ctx, "ttl", _address_key(address)))
    locked = _run(ctx, "ttl", _pair_key("locked", address, username))
    if locked > 0:
        return "locked", locked
    return None


def note_success(ctx: ServiceContext, address: str, username: str) -> None:
    """A successful login gives its attempt back and forgets the pair's failures."""
    _run(ctx, "decr", _address_key(address))
    _run(ctx, "delete", _pair_key("failures", address, username))


def note_failure(ctx: ServiceContext, address: str, username: str) -> timedelta | None:
    """Count a failed attempt of `address` for `username`; the lock's duration if this one locks
    the pair (CA_CONSOLE_LOCKOUT_MINUTES, doubled for each earlier lock-out of the pair that day)."""
    window = ctx.settings.console_lockout_minutes * 60
    if _run(ctx, "incr", _pair_key("failures", address, username), window) < ctx.settings.console_lockout_failures:
        return None
    lockouts = _run(ctx, "incr", _pair_key("lockouts", address, username), _DAY)
    seconds = min(_DAY, window * 2 ** min(lockouts - 1, 16))
    _run(ctx, "put", _pair_key("locked", address, username), 1, seconds)
    _run(ctx, "delete", _pair_key("failures", address, username))
    return timedelta(seconds=seconds)


def clear(ctx: ServiceContext, username: str) -> None:
    """Every lock and failure count of `username`, from every address (operators reset)."""
    name = _pair_key("", "", username).split(":")[-2]
    _run(ctx, "delete_account", name)
    ctx.local(LoginCounters).delete_account(name)
