"""Lifecycle events to the front end (issue 25, DESIGN §4d), in-process against a real receiver
(http.server) that verifies every signature with the `standardwebhooks` package.

The delivery job runs here as the worker runs it (services.events.delivery.deliver_stream); the
real rq worker, gunicorn, PostgreSQL and SIGKILL cases are in tests/e2e/test_webhooks_worker.py."""

from __future__ import annotations

import base64
import itertools
import json
import time
from collections.abc import Iterator
from dataclasses import replace

import pytest
from sqlalchemy import func, select, update
from standardwebhooks.webhooks import Webhook

from ca_service.api.app import create_app
from ca_service.context import Actor, ServiceContext
from ca_service.services import events
from ca_service.services.events import admin, delivery
from ca_service.services.notices import scan as notices
from ca_service.store.db import transaction
from ca_service.store.models import AuditEvent, WebhookDelivery, WebhookEvent
from config.settings import SettingsError, load_settings
from config.webhook_settings import WebhookSettings, decode_secret
from tests.support.api import Api
from tests.support.pki import make_csr
from tests.support.webhook_receiver import Receiver, new_secret, tls_server
from tests.test_est import csr_b64, enrol, mint

SECRET = new_secret()
OPERATOR = Actor(client_name="helpdesk-tests", role="operator")


def hooked(ctx: ServiceContext, *urls: str, secrets: tuple[str, ...] = (SECRET,)) -> ServiceContext:
    """The session's context with webhooks switched on (same database, Redis and clock)."""
    ws = WebhookSettings(
        urls=urls, secrets=tuple(decode_secret(s, ValueError) for s in secrets), connect_timeout=1.0, timeout=2.0
    )
    return replace(ctx, settings=replace(ctx.settings, webhooks=ws))


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver(SECRET)
    yield r
    r.close()


def drain(wctx: ServiceContext) -> None:
    """Run the delivery job for every stream with something pending (what the worker does)."""
    with wctx.sessions() as s:
        pairs = list(
            s.execute(select(WebhookDelivery.stream, WebhookDelivery.url).where(WebhookDelivery.status == "pending").distinct())
        )
    for stream, url in pairs:
        delivery.deliver_stream(wctx, stream, url)


def statuses(wctx: ServiceContext) -> list[str]:
    with wctx.sessions() as s:
        return list(s.scalars(select(WebhookDelivery.status).order_by(WebhookDelivery.id)))


def test_lifecycle_events_are_signed_in_order_and_carry_no_secret(ctx, tokens, clock, receiver) -> None:
    wctx = hooked(ctx, receiver.url)
    api = Api(tokens, flask_client=create_app(wctx).test_client())
    api.org("acme")
    api.user("boss", "acme", role="master")
    api.user("alice", "acme")
    first = api.issue("alice", make_csr()[1])
    assert first.status == 201, first
    r = api.post(
        f"/v1/certificates/{first.json['serial']}/revocation", json={"reason": "key_compromise", "acting_login_id": "boss"}
    )
    assert r.status == 200, r
    second = api.issue("alice", make_csr()[1])
    assert second.status == 201, second
    clock.travel(days=330)  # inside the renewal window, and within 40 days of expiry
    notices.scan(wctx)
    renewed = api.post(f"/v1/certificates/{second.json['serial']}/renewal", json={"csr": make_csr()[1]})
    assert renewed.status == 201, renewed
    r = api.put(
        "/v1/users/alice", role="operator", json={"org_id": "acme", "role": "master", "email": "a@example.com", "ticket": "T-1"}
    )
    assert r.status == 200, r
    r = api.post("/v1/organizations/acme/login-method", role="operator", json={"login_method": "id_password", "ticket": "T-2"})
    assert r.status == 200, r
    drain(wctx)

    assert receiver.bad_signatures == 0
    assert receiver.types("alice") == [
        "certificate.issued", "certificate.revoked", "certificate.issued", "certificate.expiring", "certificate.renewed",
        "certificate.revoked", "user.role_changed", "certificate.revoked",
    ]  # fmt: skip
    assert [e["type"] for e in receiver.accepted if e["data"].get("org_id") == "acme" and "login_id" not in e["data"]] == [
        "organization.login_method_changed"
    ]
    by_type = {e["type"]: e for e in receiver.accepted}
    assert by_type["certificate.renewed"]["data"]["predecessor"] == second.json["serial"]
    assert by_type["organization.login_method_changed"]["data"] == {
        "org_id": "acme", "login_method": "id_password", "previous": "certificate", "revoked": 1,
    }  # fmt: skip
    for event, headers in zip(receiver.accepted, receiver.headers, strict=False):
        assert set(event) == {"id", "type", "occurred_at", "data"}
        assert headers["webhook-id"] == event["id"]
        assert abs(int(headers["webhook-timestamp"]) - time.time()) < 60  # real time: the receiver's replay check
    # no token, code or key in any event body
    blob = b"\n".join(receiver.bodies)
    for secret in [*tokens.values(), SECRET, SECRET.removeprefix("whsec_")]:
        assert secret.encode() not in blob
    for needle in (b"BEGIN", b"PRIVATE", b"certificate_pem", b"ticket", b"T-1", b"T-2"):
        assert needle not in blob
    assert statuses(wctx) == ["delivered"] * len(receiver.accepted)


def test_rotation_sends_both_signatures_and_each_secret_verifies(ctx, receiver) -> None:
    old, new = SECRET, new_secret(24)
    wctx = hooked(ctx, receiver.url, secrets=(old, new))
    with transaction(wctx.sessions) as session:
        events.record_in(session, wctx, events.ENROLMENT_CODE_USED, login_id="carol", data={"login_id": "carol"})
    drain(wctx)
    assert receiver.types() == ["enrolment_code.used"]
    header = receiver.headers[0]["webhook-signature"]
    assert len(header.split(" ")) == 2 and all(s.startswith("v1,") for s in header.split(" "))
    # a receiver that knows only one of the two secrets verifies (the package checks each signature)
    for secret in (old, new):
        assert Webhook(secret).verify(receiver.bodies[0], receiver.headers[0])["type"] == "enrolment_code.used"


def test_a_rolled_back_change_records_and_sends_nothing(ctx, tokens, receiver) -> None:
    wctx = hooked(ctx, receiver.url)
    api = Api(tokens, flask_client=create_app(wctx).test_client())
    api.org("acme")
    api.user("alice", "acme")
    assert api.issue("alice", make_csr()[1]).status == 201
    refused = api.issue("alice", make_csr()[1])  # a second valid certificate: the transaction rolls back
    assert refused.status == 409, refused
    with pytest.raises(RuntimeError), transaction(wctx.sessions) as session:
        events.record_in(session, wctx, events.CERTIFICATE_REVOKED, login_id="alice", data={"login_id": "alice"})
        raise RuntimeError("the change fails after its event was recorded")
    with wctx.sessions() as s:
        assert s.scalar(select(func.count()).select_from(WebhookEvent)) == 1
    drain(wctx)
    assert receiver.types() == ["certificate.issued"]


def test_the_production_retry_schedule() -> None:
    ws = WebhookSettings()
    assert [delivery.backoff_seconds(ws, n) for n in range(1, 11)] == [5, 10, 20, 40, 80, 160, 320, 600, 600, 600]
    offsets = delivery.schedule(ws)
    assert offsets[:9] == [0, 5, 15, 35, 75, 155, 315, 635, 1235]
    assert offsets[-1] == 24 * 3600 and offsets[-2] < 24 * 3600  # the last attempt at 24 h, then failed
    # the first attempt, 7 growing waits (5 s .. 320 s), 142 of 10 minutes, one shortened to end at 24 h
    assert len(offsets) == 1 + 7 + 142 + 1
    assert all(b - a <= 600 for a, b in itertools.pairwise(offsets))


def test_500s_then_200_and_give_up_after_24_hours(ctx, clock, receiver) -> None:
    receiver.behaviour = lambda n: 500 if n <= 3 else 200
    wctx = hooked(ctx, receiver.url)
    with transaction(wctx.sessions) as session:
        events.record_in(session, wctx, events.CERTIFICATE_ISSUED, login_id="dave", data={"login_id": "dave", "serial": "01"})
        events.record_in(session, wctx, events.CERTIFICATE_REVOKED, login_id="dave", data={"login_id": "dave", "serial": "01"})
    waits = []
    for _ in range(3):
        step = delivery.attempt_next(wctx, "dave", receiver.url)
        assert step.outcome == "retry"
        waits.append(step.wait)
        assert delivery.attempt_next(wctx, "dave", receiver.url).outcome == "waiting"  # not before its time
        clock.travel(seconds=step.wait)
    assert waits == [5, 10, 20]
    delivery.deliver_stream(wctx, "dave", receiver.url)
    assert receiver.types() == ["certificate.issued", "certificate.revoked"]  # the revoked waited for the issued

    receiver.behaviour = lambda n: 503
    with transaction(wctx.sessions) as session:
        events.record_in(session, wctx, events.CERTIFICATE_ISSUED, login_id="erin", data={"login_id": "erin", "serial": "02"})
        events.record_in(session, wctx, events.CERTIFICATE_REVOKED, login_id="erin", data={"login_id": "erin", "serial": "02"})
    step = delivery.attempt_next(wctx, "erin", receiver.url)
    for _ in range(200):
        if step.outcome != "retry":
            break
        clock.travel(seconds=step.wait)
        step = delivery.attempt_next(wctx, "erin", receiver.url)
    assert step.outcome == "failed"
    failed = admin.list_deliveries(wctx, failed_only=True)
    assert [(d.type, d.status, d.last_status) for d in failed] == [("certificate.issued", "failed", 503)]
    assert failed[0].attempts == len(delivery.schedule(wctx.settings.webhooks))  # the schedule, as computed
    # the failed head no longer holds the stream back; a retry (audited) sends it again
    receiver.behaviour = lambda n: 200
    delivery.deliver_stream(wctx, "erin", receiver.url)
    admin.retry(wctx, OPERATOR, failed[0].id)
    delivery.deliver_stream(wctx, "erin", receiver.url)
    assert receiver.types("erin") == ["certificate.revoked", "certificate.issued"]
    with wctx.sessions() as s:
        assert s.scalar(select(func.count()).select_from(AuditEvent).where(AuditEvent.action == "webhook.delivery_retried")) == 1


def test_a_receiver_that_never_answers_or_floods_does_not_hold_the_worker(ctx, receiver) -> None:
    receiver.behaviour = lambda n: "hang" if n == 1 else "huge"
    wctx = hooked(ctx, receiver.url)
    with transaction(wctx.sessions) as session:
        events.record_in(session, wctx, events.CERTIFICATE_ISSUED, login_id="frank", data={"login_id": "frank"})
    started = time.monotonic()
    step = delivery.attempt_next(wctx, "frank", receiver.url)
    hung = time.monotonic() - started
    assert step.outcome == "retry" and hung < 3.5, (step, hung)  # CA_WEBHOOK_TIMEOUT_SECONDS=2 in this test
    assert admin.list_deliveries(wctx)[0].last_error == "no answer within 2 s"
    with wctx.sessions() as s, s.begin():  # due now
        s.execute(update(WebhookDelivery).values(next_attempt_at=wctx.clock.now()))
    started = time.monotonic()
    assert delivery.attempt_next(wctx, "frank", receiver.url).outcome == "delivered"
    assert time.monotonic() - started < 3.5
    receiver.wait_for(lambda: receiver.requests == 2 and time.sleep(0.5) is None)
    assert receiver.flood_sent < 64 * 2**20, receiver.flood_sent  # 4 KB read, then closed: socket buffers, not 1.6 GB


def test_a_redirect_is_not_followed(ctx, receiver) -> None:
    receiver.behaviour = lambda n: 302
    wctx = hooked(ctx, receiver.url)
    with transaction(wctx.sessions) as session:
        events.record_in(session, wctx, events.USER_ROLE_CHANGED, login_id="gina", data={"login_id": "gina", "role": "master"})
    assert delivery.attempt_next(wctx, "gina", receiver.url).outcome == "retry"
    assert receiver.requests == 1  # nothing went to the Location
    assert (admin.list_deliveries(wctx)[0].last_error or "").startswith("HTTP 302")


def test_several_urls_are_delivered_independently(ctx, receiver) -> None:
    broken = Receiver(SECRET, behaviour=lambda n: 500)
    try:
        wctx = hooked(ctx, receiver.url, broken.url)
        with transaction(wctx.sessions) as session:
            events.record_in(session, wctx, events.CERTIFICATE_ISSUED, login_id="hana", data={"login_id": "hana"})
        drain(wctx)
        assert receiver.types() == ["certificate.issued"] and broken.requests == 1
        assert sorted(d.status for d in admin.list_deliveries(wctx)) == ["delivered", "pending"]
    finally:
        broken.close()


def test_an_event_never_carries_a_secret() -> None:
    for data in ({"code": "ABCD"}, {"login_id": "x", "enrolment_code": "ABCD"}, {"nested": {"token": "t"}}, {"private_key": "k"}):
        with pytest.raises(ValueError, match="never carries"):
            events.recording._check_plain(data)


def test_settings_refuse_plain_http_weak_or_missing_secrets(tmp_path) -> None:
    base = {"CA_DATA_DIR": str(tmp_path), "CA_WEBHOOK_SECRET": SECRET}
    with pytest.raises(SettingsError, match="plain http"):
        load_settings({**base, "CA_WEBHOOK_URLS": "http://frontend.bank.example/hooks"})
    assert load_settings(
        {**base, "CA_WEBHOOK_URLS": "http://frontend.bank.example/h", "CA_WEBHOOK_ALLOW_HTTP": "true"}
    ).webhooks.enabled
    assert (
        load_settings({**base, "CA_WEBHOOK_URLS": "http://127.0.0.1:9/h,https://fe.example/h"}).webhooks.urls[1]
        == "https://fe.example/h"
    )
    short = "whsec_" + base64.b64encode(b"x" * 23).decode()
    with pytest.raises(SettingsError, match="at least 24 bytes"):
        load_settings({**base, "CA_WEBHOOK_URLS": "https://fe.example/h", "CA_WEBHOOK_SECRET": short})
    with pytest.raises(SettingsError, match="CA_WEBHOOK_SECRET"):
        load_settings({"CA_DATA_DIR": str(tmp_path), "CA_WEBHOOK_URLS": "https://fe.example/h"})
    secret_file = tmp_path / "secret"
    secret_file.write_text(f"{SECRET} {new_secret()}\n")
    secret_file.chmod(0o600)
    env = {"CA_DATA_DIR": str(tmp_path), "CA_WEBHOOK_URLS": "https://fe.example/h", "CA_WEBHOOK_SECRET_FILE": str(secret_file)}
    assert len(load_settings(env).webhooks.secrets) == 2
    assert "whsec" not in repr(load_settings(env)) and json.dumps(str(load_settings(env).webhooks)).count("secrets") == 0


def test_https_receivers_are_verified_against_the_configured_bundle(ctx, tmp_path) -> None:
    server_tls, bundle = tls_server(tmp_path)
    secure = Receiver(SECRET, tls=server_tls)
    try:
        plain = hooked(ctx, secure.url)  # the system's trust store does not know the receiver's CA
        with transaction(plain.sessions) as session:
            events.record_in(session, plain, events.CERTIFICATE_ISSUED, login_id="ichiro", data={"login_id": "ichiro"})
        assert delivery.attempt_next(plain, "ichiro", secure.url).outcome == "retry"
        assert "CERTIFICATE_VERIFY_FAILED" in (admin.list_deliveries(plain)[0].last_error or "")
        assert secure.requests == 0  # nothing was sent to an unverified peer
        trusted = replace(plain, settings=replace(plain.settings, webhooks=replace(plain.settings.webhooks, ca_bundle=bundle)))
        with trusted.sessions() as s, s.begin():
            s.execute(update(WebhookDelivery).values(next_attempt_at=trusted.clock.now()))
        assert delivery.attempt_next(trusted, "ichiro", secure.url).outcome == "delivered"
        assert secure.types() == ["certificate.issued"] and secure.bad_signatures == 0
    finally:
        secure.close()


def test_an_est_enrolment_tells_the_front_end_its_code_was_used(ctx, tokens, receiver) -> None:
    """EST simpleenroll (issue 23) records certificate.issued then enrolment_code.used in the
    issuance's transaction; neither carries the code."""
    wctx = hooked(ctx, receiver.url)
    api = Api(tokens, flask_client=create_app(wctx).test_client())
    api.org("acme", login_method="certificate")
    api.user("erin", "acme")
    code = mint(api, "erin")
    r = enrol(api, "erin", code, csr_b64()[1])
    assert r.status == 200, r
    drain(wctx)
    assert receiver.bad_signatures == 0
    assert receiver.types("erin") == ["certificate.issued", "enrolment_code.used"]
    used = receiver.accepted[-1]["data"]
    assert used["login_id"] == "erin" and used["serial"] == receiver.accepted[0]["data"]["serial"]
    blob = b"\n".join(receiver.bodies)
    assert code.encode() not in blob and code.replace("-", "").encode() not in blob
