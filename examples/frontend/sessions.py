"""Server-side sessions, found by id (the cookie) AND by certificate serial: a webhook receiver
added later (DESIGN §4d, `certificate.revoked`) ends a revoked certificate's sessions with
`end_by_serial(serial)`, at once, without waiting for the next request."""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

IDLE_SECONDS = 15 * 60


@dataclass
class Session:
    sid: str
    login_id: str
    org_id: str
    role: str
    method: str  # certificate or id_password
    serial: str | None  # the client certificate the session was opened with
    notices: list[dict[str, object]]
    not_after: str | None = None  # the certificate's expiry, shown after login (Q9)
    csrf: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    last_seen: float = field(default_factory=time.monotonic)


class SessionStore:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_id: dict[str, Session] = {}
        self._by_serial: dict[str, set[str]] = {}

    def open(self, **fields: object) -> Session:
        session = Session(sid=secrets.token_urlsafe(32), **fields)  # type: ignore[arg-type]
        with self._lock:
            self._by_id[session.sid] = session
            if session.serial:
                self._by_serial.setdefault(session.serial, set()).add(session.sid)
        return session

    def get(self, sid: str | None) -> Session | None:
        if not sid:
            return None
        with self._lock:
            session = self._by_id.get(sid)
            if session is None:
                return None
            if time.monotonic() - session.last_seen > IDLE_SECONDS:
                self._drop(sid)
                return None
            session.last_seen = time.monotonic()
            return session

    def end(self, sid: str) -> None:
        with self._lock:
            self._drop(sid)

    def end_by_serial(self, serial: str) -> int:
        """End every session opened with this certificate; how many were ended."""
        with self._lock:
            sids = list(self._by_serial.get(serial, ()))
            for sid in sids:
                self._drop(sid)
            return len(sids)

    def end_matching(self, predicate: Callable[[Session], bool]) -> int:
        """End every session the predicate picks (a login ID's, an organisation's); how many."""
        with self._lock:
            sids = [sid for sid, session in self._by_id.items() if predicate(session)]
            for sid in sids:
                self._drop(sid)
            return len(sids)

    def _drop(self, sid: str) -> None:
        session = self._by_id.pop(sid, None)
        if session is not None and session.serial:
            holders = self._by_serial.get(session.serial, set())
            holders.discard(sid)
            if not holders:
                self._by_serial.pop(session.serial, None)
