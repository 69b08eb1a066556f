"""The 40-day expiry notices (R6, issue 4): the scan's window, paging and idempotency, the screen
notices and their Japan-time texts, and the email sent exactly once over a real SMTP server
(aiosmtpd), with attempts and errors recorded."""

from __future__ import annotations

import dataclasses
import threading
from datetime import UTC, datetime, timedelta

import pytest
from rq import Queue
from sqlalchemy import func, select, update

from ca_service.context import build_context
from ca_service.outbox import records
from ca_service.services.notices import mailer
from ca_service.services.notices import scan as notices
from ca_service.store.models import Certificate, Notice, OutboxEntry
from tests.support.background import SmtpServer
from tests.support.cli import run_cli
from tests.support.live import free_port
from tests.support.pki import make_csr
from tests.support.workers import empty_queues, insert_certificates, run_worker_burst

JST = timedelta(hours=9)  # Asia/Tokyo has no daylight saving time


@pytest.fixture
def queues(test_env):
    empty_queues(test_env.redis_url)
    yield
    empty_queues(test_env.redis_url)


@pytest.fixture
def smtp():
    server = SmtpServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def mail_ctx(ctx, smtp):
    """The service context with the test's SMTP server as the mail relay."""
    context = build_context(dataclasses.replace(ctx.settings, smtp_port=smtp.port), clock=ctx.clock, pool_size=2)
    yield context
    context.engine.dispose()


def _notices(ctx) -> dict[str, Notice]:
    with ctx.sessions() as s:
        return {n.login_id: n for n in s.scalars(select(Notice))}


def _email_outbox(ctx) -> int:
    with ctx.sessions() as s:
        return s.scalar(select(func.count()).select_from(OutboxEntry).where(OutboxEntry.kind == records.NOTICE_EMAIL))


def test_scan_pages_through_the_window_once(ctx, queues):
    as_of = ctx.clock.now().replace(microsecond=0)
    tie = as_of + timedelta(days=10)  # five certificates expiring at the same second, across pages of 2
    rows = [{"login_id": f"tie{i}", "not_after": tie, "email": f"tie{i}@example.com" if i % 2 else None} for i in range(5)]
    rows += [
        {"login_id": "last-day", "not_after": as_of + timedelta(days=40) - timedelta(seconds=1), "email": "l@example.com"},
        {"login_id": "too-early", "not_after": as_of + timedelta(days=40, seconds=1), "email": "e@example.com"},
        {"login_id": "expired", "not_after": as_of - timedelta(seconds=1), "email": "x@example.com"},
        {"login_id": "revoked", "not_after": as_of + timedelta(days=5), "email": "r@example.com",
         "revoked_at": as_of, "revocation_reason": "key_compromise"},
    ]  # fmt: skip
    serials = dict(zip([r["login_id"] for r in rows], insert_certificates(ctx, "acme", rows), strict=True))
    pages: list[int] = []
    result = notices.scan(ctx, as_of, batch=2, progress=pages.append)
    due = {f"tie{i}" for i in range(5)} | {"last-day"}
    assert (result.examined, result.created, result.emails_queued) == (6, 6, 3)
    assert sum(pages) == 6 and max(pages) <= 2
    created = _notices(ctx)
    assert set(created) == due
    assert {k: n.email_status for k, n in created.items()} == {
        "tie0": "no_email", "tie1": "pending", "tie2": "no_email", "tie3": "pending", "tie4": "no_email", "last-day": "pending",
    }  # fmt: skip
    assert all(n.serial == serials[k] and n.kind == "certificate_expiring" for k, n in created.items())
    assert _email_outbox(ctx) == 3

    rerun = notices.scan(ctx, as_of, batch=2)  # harmless: nothing new, no second email
    assert (rerun.examined, rerun.created, rerun.emails_queued) == (6, 0, 0)
    assert _email_outbox(ctx) == 3
    later = notices.scan(ctx, as_of + timedelta(days=1))  # a day later the next one is due
    assert later.created == 1 and set(_notices(ctx)) == due | {"too-early"}


def test_cli_scan_with_as_of(ctx, test_env, queues):
    as_of = datetime(2031, 5, 1, tzinfo=UTC)
    insert_certificates(ctx, "acme", [{"login_id": "a", "not_after": as_of + timedelta(days=3), "email": "a@example.com"}])
    out = run_cli("notices", "scan", "--as-of", "2031-05-01", env=test_env.env()).stdout
    assert "1 notices created, 1 emails queued" in out
    assert "0 notices created" in run_cli("notices", "scan", "--as-of", "2031-05-01", env=test_env.env()).stdout
    assert "0 certificates due" in run_cli("notices", "scan", env=test_env.env()).stdout  # today: not yet due


def test_screen_notices_in_japan_time_until_expiry(api, ctx, clock, queues):
    now = ctx.clock.now()
    day = (now + timedelta(days=20)).date()
    not_after = datetime(day.year, day.month, day.day, 16, 30, tzinfo=UTC)  # 01:30 the next day in Japan
    local = not_after + JST
    serial = insert_certificates(ctx, "acme", [{"login_id": "hanako", "not_after": not_after, "email": None}])[0]
    notices.scan(ctx)
    items = api.get("/v1/users/hanako/notices").json["items"]
    assert len(items) == 1
    item = items[0]
    days = (local.date() - (now + JST).date()).days
    assert item["kind"] == "certificate_expiring" and item["serial"] == serial and item["days_remaining"] == days
    assert item["not_after"].startswith(not_after.strftime("%Y-%m-%dT%H:%M:%S"))
    assert f"{local.year}年{local.month}月{local.day}日 01:30" in item["message_ja"]
    assert f"あと{days}日" in item["message_ja"] and "ログイン後の画面から電子証明書を更新してください" in item["message_ja"]
    assert f"{local:%Y-%m-%d} 01:30 (Asia/Tokyo)" in item["message_en"] and f"in {days} days" in item["message_en"]
    assert "renew" in item["message_en"]
    assert api.get("/v1/users/hanako/notices", role="operator").status == 403
    assert api.get("/v1/users/nobody/notices").json["items"] == []
    clock.travel(days=21)  # expired: no longer shown
    assert api.get("/v1/users/hanako/notices").json["items"] == []


def test_login_check_carries_the_notice(api, ctx, clock, queues):
    api.org("acme")
    api.user("taro", "acme")
    issued = api.issue("taro", make_csr()[1]).json
    check = {"login_id": "taro", "method": "certificate", "certificate_pem": issued["certificate_pem"]}
    assert api.post("/v1/login-checks", json=check).json["notices"] == []
    clock.travel(days=330)
    notices.scan(ctx)
    r = api.post("/v1/login-checks", json=check).json
    assert r["allowed"] is True and [n["serial"] for n in r["notices"]] == [issued["serial"]]
    assert r["notices"][0]["days_remaining"] in (34, 35, 36) and r["notices"][0]["message_en"]


def test_email_is_sent_once_in_japanese_with_english(ctx, mail_ctx, smtp, queues):
    not_after = datetime(2031, 3, 31, 15, 30, tzinfo=UTC)  # 2031-04-01 00:30 in Japan
    serial = insert_certificates(ctx, "acme", [{"login_id": "jiro", "not_after": not_after, "email": "jiro@example.com"}])[0]
    notices.scan(ctx, not_after - timedelta(days=39))
    notice_id = _notices(ctx)["jiro"].id
    outcomes: list[str] = []

    def send() -> None:
        outcomes.append(mailer.send_notice_email(mail_ctx, notice_id).status)

    threads = [threading.Thread(target=send) for _ in range(3)]  # a duplicate enqueue, a retry, ...
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    outcomes.append(mailer.send_notice_email(mail_ctx, notice_id).status)
    assert sorted(outcomes) == ["already-sent"] * 3 + ["sent"]
    assert len(smtp.messages) == 1
    message = smtp.messages[0]
    assert message["To"] == "jiro@example.com" and message["From"] == ctx.settings.mail_from
    assert "電子証明書の有効期限" in message["Subject"] and "expires" in message["Subject"]
    body = message.get_body(("plain",)).get_content()
    assert "2031年4月1日 00:30" in body and "2031-04-01 00:30 (Asia/Tokyo)" in body and serial in body
    assert "ログイン後の画面" in body and "renew" in body
    notice = _notices(ctx)["jiro"]
    assert (notice.email_status, notice.email_attempts, notice.email_last_error) == ("sent", 1, None)
    assert notice.email_sent_at is not None


def test_smtp_failures_are_recorded_then_the_email_goes_once(ctx, mail_ctx, smtp, test_env, queues):
    not_after = ctx.clock.now() + timedelta(days=30)
    insert_certificates(
        ctx, "acme",
        [{"login_id": "saburo", "not_after": not_after, "email": "s@example.com"},
         {"login_id": "shiro", "not_after": not_after, "email": None}],
    )  # fmt: skip
    notices.scan(ctx)
    notice_id = _notices(ctx)["saburo"].id
    smtp.stop()  # the mail relay is down
    with pytest.raises(mailer.EmailDeliveryError):
        mailer.send_notice_email(mail_ctx, notice_id)
    notice = _notices(ctx)["saburo"]
    assert (notice.email_status, notice.email_attempts) == ("pending", 1) and "Connection" in notice.email_last_error
    with pytest.raises(mailer.EmailDeliveryError):  # RQ's last retry
        mailer.send_notice_email(mail_ctx, notice_id, final_attempt=True)
    assert (_notices(ctx)["saburo"].email_status, _notices(ctx)["saburo"].email_attempts) == ("failed", 2)
    listed = run_cli("notices", "list", "--failed", "--json", env=test_env.env()).stdout
    assert '"login_id": "saburo"' in listed and '"attempts": 2' in listed
    smtp.start()  # an operator re-sends after the outage: delivered once, the error cleared
    assert mailer.send_notice_email(mail_ctx, notice_id).status == "sent"
    assert mailer.send_notice_email(mail_ctx, notice_id).status == "already-sent"
    notice = _notices(ctx)["saburo"]
    assert (notice.email_status, notice.email_attempts, notice.email_last_error) == ("sent", 3, None)
    assert [m["To"] for m in smtp.messages] == ["s@example.com"]
    no_email = _notices(ctx)["shiro"]  # no address: kept for the screen, never mailed
    assert mailer.send_notice_email(mail_ctx, no_email.id).status == "no_email"
    assert (_notices(ctx)["shiro"].email_status, _notices(ctx)["shiro"].email_attempts) == ("no_email", 0)


def test_a_failed_email_job_is_reported_as_failed(api, ctx, test_env, queues):
    from redis import Redis

    insert_certificates(ctx, "acme", [{"login_id": "goro", "not_after": ctx.clock.now() + timedelta(days=9), "email": "g@x.jp"}])
    notices.scan(ctx)
    empty_queues(test_env.redis_url)  # the scan's own (retrying) job is not wanted here
    notice_id = _notices(ctx)["goro"].id
    job = Queue("mail", connection=Redis.from_url(test_env.redis_url)).enqueue(
        "workers.jobs.send_notice_email_job", kwargs={"notice_id": notice_id}
    )
    run_worker_burst(test_env, CA_SMTP_PORT=str(free_port()))  # nothing listens there
    status = api.get(f"/v1/jobs/{job.id}", role="operator").json
    assert status["status"] == "failed" and "EmailDeliveryError" in status["error"] and status["result"] is None
    notice = _notices(ctx)["goro"]
    assert notice.email_status == "failed" and notice.email_attempts == 1


def test_no_email_once_the_certificate_is_revoked(ctx, mail_ctx, smtp, queues):
    serial = insert_certificates(
        ctx, "acme", [{"login_id": "rokuro", "not_after": ctx.clock.now() + timedelta(days=20), "email": "r@x.jp"}]
    )[0]
    notices.scan(ctx)  # the email is queued, then the certificate is revoked before it goes
    with ctx.engine.begin() as conn:
        conn.execute(
            update(Certificate).where(Certificate.serial == serial).values(revoked_at=ctx.clock.now(), current_login_id=None)
        )
    assert mailer.send_notice_email(mail_ctx, _notices(ctx)["rokuro"].id).status == "cancelled"
    assert _notices(ctx)["rokuro"].email_status == "cancelled" and smtp.messages == []
