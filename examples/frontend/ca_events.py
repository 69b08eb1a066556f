"""The CA's signed lifecycle events (DESIGN §4d, docs/events.md), received by the front end.

`POST /ca-events` is for the CA only: the CA's worker posts to the app's INTERNAL address (nginx
answers 404 for this path, so the public side never reaches it). Every request is verified with
the `standardwebhooks` package (HMAC-SHA256 over `id.timestamp.body`, a timestamp at most 5
minutes from our clock), deduplicated on `id` (delivery is at least once), then acted upon:

- `certificate.revoked`: every session opened with that certificate serial ends at once; the
  user's next page view, even on the TLS connection that presented the certificate, is the
  login screen.
- `organization.login_method_changed`: the organisation's sessions opened with the other method
  end (a switch to `id_password` also revokes the certificates, each with its own event).
- `user.role_changed`: the user's sessions end; the next login reads the role afresh from the CA
  (a demoted master loses the master's screens now, not at the idle timeout).
- any other type is acknowledged and ignored.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from typing import Any

from flask import Flask, request
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from examples.frontend.sessions import SessionStore

PATH = "/ca-events"
REMEMBER_SECONDS = 24 * 3600  # the CA retries for 24 h: an id older than that never comes again
REMEMBER_MAX = 100_000  # and never more ids than that in memory


class SeenIds:
    """Event ids already acted upon, for a day (a bounded, thread-safe memory)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._ids: OrderedDict[str, float] = OrderedDict()

    def first_time(self, event_id: str) -> bool:
        """True once per id: the caller acts; False for a repeat."""
        now = time.monotonic()
        with self._lock:
            while self._ids and (now - next(iter(self._ids.values())) > REMEMBER_SECONDS or len(self._ids) >= REMEMBER_MAX):
                self._ids.popitem(last=False)
            if event_id in self._ids:
                return False
            self._ids[event_id] = now
            return True


def apply(store: SessionStore, event: dict[str, Any]) -> int:
    """What one event does to the sessions; how many it ended."""
    data = event.get("data") or {}
    kind = event.get("type")
    if kind == "certificate.revoked" and isinstance(data.get("serial"), str):
        return store.end_by_serial(data["serial"].lower())
    if kind == "organization.login_method_changed" and data.get("org_id"):
        method = data.get("login_method")
        return store.end_matching(lambda s: s.org_id == data["org_id"] and s.method != method)
    if kind == "user.role_changed" and data.get("login_id"):
        return store.end_matching(lambda s: s.login_id == data["login_id"])
    return 0


def register(app: Flask, store: SessionStore, secret: str) -> None:
    """Add the receiver to the app (`secret`: the `whsec_…` shared with the CA's CA_WEBHOOK_SECRET)."""
    verifier = Webhook(secret)
    seen = SeenIds()

    @app.post(PATH)
    def ca_events() -> tuple[dict[str, Any], int]:
        body = request.get_data(cache=False)  # the raw bytes as received: never re-serialised JSON
        headers = {k.lower(): v for k, v in request.headers.items()}
        try:
            event = verifier.verify(body, headers)
        except WebhookVerificationError:
            return {"title": "bad or stale signature"}, 401
        if not isinstance(event, dict) or not isinstance(event.get("id"), str):
            return {"title": "not an event"}, 400
        if event["id"] != headers.get("webhook-id"):
            return {"title": "the body's id is not the signed webhook-id"}, 400
        if not seen.first_time(event["id"]):
            return {"duplicate": True, "ended": 0}, 200
        return {"duplicate": False, "ended": apply(store, event)}, 200
