"""Failed webhook deliveries as the help desk handles them (issue 25): the console's failures page
(listed, retried with the CSRF token, audited under the operator, in Japanese and English) and
`ca-service webhooks list --failed` / `webhooks retry ID`; the scrape-time gauge of the oldest
undelivered event."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from click.testing import CliRunner

from ca_service.api.app import create_app
from ca_service.cli.main import cli
from ca_service.context import ServiceContext
from ca_service.metrics_collectors import StateCollector
from ca_service.services import events
from ca_service.services.audit import trail as audit
from ca_service.services.events import admin, delivery
from ca_service.services.helpdesk import lookups as helpdesk
from ca_service.store.db import transaction
from tests.console.test_console_app import Console
from tests.support.console import make_operator
from tests.support.webhook_receiver import Receiver
from tests.test_webhooks import SECRET, hooked


@pytest.fixture
def refusing() -> Iterator[Receiver]:
    r = Receiver(SECRET, behaviour=lambda n: 503)
    yield r
    r.close()


def failed_delivery(wctx: ServiceContext, url: str, clock) -> int:
    with transaction(wctx.sessions) as session:
        events.record_in(session, wctx, events.CERTIFICATE_REVOKED, login_id="taro", data={"login_id": "taro", "serial": "0a"})
    assert delivery.attempt_next(wctx, "taro", url).outcome == "retry"
    clock.travel(hours=24, seconds=1)
    assert delivery.attempt_next(wctx, "taro", url).outcome == "failed"
    [failed] = admin.list_deliveries(wctx, failed_only=True)
    return failed.id


def test_a_failed_delivery_is_listed_and_sent_again_from_the_console(ctx, clock, refusing) -> None:
    wctx = hooked(ctx, refusing.url)
    delivery_id = failed_delivery(wctx, refusing.url, clock)
    clock.reset()  # the operator's TOTP is read from the real clock
    app = create_app(wctx)
    alice = Console(app, make_operator(ctx, "alice"))
    listed = alice.get("/console/failures?lang=en").text
    assert "Events the front end did not receive" in listed and "HTTP 503" in listed and "certificate.revoked" in listed
    assert "フロントエンドに届かなかったイベント" in alice.get("/console/failures?lang=ja").text
    path = f"/console/failures/webhooks/{delivery_id}/retry"
    assert path in listed
    assert alice.client.post(path, data={}).status_code == 400  # no CSRF token: refused, nothing changed
    assert admin.list_deliveries(wctx, failed_only=True)[0].id == delivery_id
    assert alice.post(path, {}, page="/console/failures").status_code == 302
    assert [d.status for d in admin.list_deliveries(wctx)] == ["pending"]
    audit.seal_pending(ctx, wait=True)
    [event] = helpdesk.audit_events(ctx, helpdesk.AuditQuery(action="webhook.delivery_retried"))
    assert event["client_name"] == "console:alice"


def test_the_webhooks_cli_lists_failed_deliveries_and_retries_one(ctx, clock, refusing) -> None:
    wctx = hooked(ctx, refusing.url)
    delivery_id = failed_delivery(wctx, refusing.url, clock)
    runner = CliRunner()  # the real command in-process (a subprocess per call costs ~5 s here)

    def run(*args: str) -> tuple[int, str]:
        result = runner.invoke(cli, list(args))
        return result.exit_code, result.output

    code, out = run("webhooks", "list", "--failed", "--json")
    assert code == 0, out
    assert [(d["id"], d["type"], d["status"], d["last_status"]) for d in json.loads(out)] == [
        (delivery_id, "certificate.revoked", "failed", 503)
    ]
    code, out = run("webhooks", "retry", str(delivery_id))
    assert code == 0 and "pending again" in out, out
    code, out = run("webhooks", "retry", str(delivery_id))
    assert code == 1 and "delivery-not-failed" in out, out
    assert json.loads(run("webhooks", "list", "--failed", "--json")[1]) == []
    code, out = run("webhooks", "list")
    assert code == 0 and "certificate.revoked" in out and "pending" in out, out
    helped = CliRunner().invoke(cli, ["webhooks", "--help"]).output
    assert "list" in helped and "retry" in helped and "24" in helped


def test_the_gauge_shows_the_age_of_the_oldest_undelivered_event(ctx, clock, refusing) -> None:
    wctx = hooked(ctx, refusing.url)
    with transaction(wctx.sessions) as session:
        events.record_in(session, wctx, events.USER_ROLE_CHANGED, login_id="jiro", data={"login_id": "jiro", "role": "master"})
    clock.travel(minutes=20)

    def gauge() -> float:
        families = {m.name: m for m in StateCollector(wctx)._database()}
        return families["ca_webhook_oldest_undelivered_seconds"].samples[0].value

    assert 1195 <= gauge() <= 1210
    refusing.behaviour = lambda n: 200
    delivery.deliver_stream(wctx, "jiro", refusing.url)
    assert gauge() == 0
