"""The reference front end's receiver of the CA's events (examples/frontend/ca_events.py),
in-process: requests signed by the CA's own signer (ca_service.services.events.signing) and
checked by the `standardwebhooks` package inside the front end. Forged, stale and replayed
events end nothing; `certificate.revoked` ends exactly that serial's sessions.
The same in real Chromium, with the real worker: tests/e2e/test_frontend_events_browser.py."""

from __future__ import annotations

import base64
import json
import time
import uuid
from typing import Any

import pytest

from ca_service.services.events import signing
from examples.frontend.app import create_app
from examples.frontend.ca_api import CaApi
from examples.frontend.passwords import Passwords
from examples.frontend.sessions import SessionStore
from tests.support.webhook_receiver import new_secret

SECRET = new_secret()
KEY = base64.b64decode(SECRET.removeprefix("whsec_"))


@pytest.fixture
def app(tmp_path):
    (tmp_path / "pw.json").write_text("{}")
    unused = CaApi("http://127.0.0.1:9", "not-used")  # the receiver never calls the CA
    return create_app(unused, Passwords(tmp_path / "pw.json"), public_url="https://bank.example", webhook_secret=SECRET)


def _open(store: SessionStore, login_id: str, serial: str | None, org_id: str = "acme", role: str = "general"):
    method = "certificate" if serial else "id_password"
    return store.open(login_id=login_id, org_id=org_id, role=role, method=method, serial=serial, notices=[])


def _event(kind: str, data: dict[str, Any], event_id: str | None = None) -> tuple[str, bytes]:
    event_id = event_id or f"evt_{uuid.uuid4().hex}"
    body = {"id": event_id, "type": kind, "occurred_at": "2026-12-07T04:00:00Z", "data": data}
    return event_id, json.dumps(body, separators=(",", ":"), sort_keys=True).encode()


def _post(client, event_id: str, body: bytes, *, key: bytes = KEY, timestamp: int | None = None):
    headers = signing.headers((key,), event_id, int(time.time()) if timestamp is None else timestamp, body)
    return client.post("/ca-events", data=body, headers=headers)


def _revoked(serial: str, login_id: str = "alice") -> dict[str, Any]:
    return {"login_id": login_id, "org_id": "acme", "serial": serial, "reason": "key_compromise",
            "revoked_at": "2026-12-07T04:00:00Z"}  # fmt: skip


def test_certificate_revoked_ends_that_serials_sessions_only(app):
    store: SessionStore = app.extensions["sessions"]
    a1, a2 = _open(store, "alice", "4f1c"), _open(store, "alice", "4f1c")  # two browsers, one certificate
    bob = _open(store, "bob", "77aa")
    r = _post(app.test_client(), *_event("certificate.revoked", _revoked("4f1c")))
    assert (r.status_code, r.json) == (200, {"duplicate": False, "ended": 2})
    assert store.get(a1.sid) is None and store.get(a2.sid) is None
    assert store.get(bob.sid) is not None


@pytest.mark.parametrize("attack", ["wrong-secret", "tampered-body", "no-signature", "stale", "future", "other-id"])
def test_a_forged_or_stale_event_is_refused_and_ends_nothing(app, attack):
    store: SessionStore = app.extensions["sessions"]
    alice = _open(store, "alice", "4f1c")
    event_id, body = _event("certificate.revoked", _revoked("4f1c"))
    client = app.test_client()
    if attack == "wrong-secret":
        r = _post(client, event_id, body, key=base64.b64decode(new_secret().removeprefix("whsec_")))
    elif attack == "tampered-body":  # a genuine signature of bob's event, alice's serial in the body
        bobs = _event("certificate.revoked", _revoked("77aa"), event_id)[1]
        headers = signing.headers((KEY,), event_id, int(time.time()), bobs)
        r = client.post("/ca-events", data=body, headers=headers)
    elif attack == "no-signature":
        r = client.post("/ca-events", data=body, headers={"content-type": "application/json", "webhook-id": event_id})
    elif attack == "stale":  # a captured request replayed 10 minutes later
        r = _post(client, event_id, body, timestamp=int(time.time()) - 600)
    elif attack == "future":
        r = _post(client, event_id, body, timestamp=int(time.time()) + 600)
    else:  # signed for another webhook-id than the body's id: dedupe would key on the wrong id
        r = _post(client, f"evt_{uuid.uuid4().hex}", body)
    assert r.status_code in (400, 401), (r.status_code, r.get_data())
    assert store.get(alice.sid) is not None


def test_a_replayed_id_has_no_second_effect(app):
    store: SessionStore = app.extensions["sessions"]
    _open(store, "alice", "4f1c")
    client = app.test_client()
    event_id, body = _event("certificate.revoked", _revoked("4f1c"))
    assert _post(client, event_id, body).json == {"duplicate": False, "ended": 1}
    later = _open(store, "alice", "4f1c")  # a session on that serial again (as if opened meanwhile)
    again = _post(client, event_id, body)  # the CA re-sends (at least once): same id, fresh signature
    assert (again.status_code, again.json) == (200, {"duplicate": True, "ended": 0})
    assert store.get(later.sid) is not None


def test_login_method_and_role_changes_end_the_sessions_they_outdate(app):
    store: SessionStore = app.extensions["sessions"]
    jiro_pw = _open(store, "jiro", None)  # acme used id_password until now
    alice = _open(store, "alice", "4f1c")
    beta = _open(store, "ken", None, org_id="beta")
    hanako = _open(store, "hanako", "9abc", role="master")
    client = app.test_client()
    changed = {"org_id": "acme", "login_method": "certificate", "previous": "id_password", "revoked": 0}
    assert _post(client, *_event("organization.login_method_changed", changed)).json["ended"] == 1
    assert store.get(jiro_pw.sid) is None and store.get(alice.sid) is not None and store.get(beta.sid) is not None
    demoted = {"login_id": "hanako", "org_id": "acme", "role": "general", "previous": "master"}
    assert _post(client, *_event("user.role_changed", demoted)).json["ended"] == 1
    assert store.get(hanako.sid) is None and store.get(alice.sid) is not None
    issued = {"login_id": "alice", "org_id": "acme", "serial": "5e5e", "not_before": "x", "not_after": "y"}
    assert _post(client, *_event("certificate.issued", issued)).json["ended"] == 0  # acknowledged, nothing to do


def test_without_a_secret_there_is_no_receiver(tmp_path):
    (tmp_path / "pw.json").write_text("{}")
    app = create_app(CaApi("http://127.0.0.1:9", "x"), Passwords(tmp_path / "pw.json"), public_url="https://bank.example")
    assert app.test_client().post("/ca-events", data=b"{}").status_code in (404, 405)
