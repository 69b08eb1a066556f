"""Sending a notice's email exactly once (R6).

The notice row is locked while the message is handed to the SMTP server and marked `sent` in the
same transaction, so two runs of the job (a retry, a duplicate enqueue) never both send. An SMTP
failure is recorded on the notice (attempts, last error) in its own commit and re-raised, so RQ
retries the job with backoff; after the last retry the notice is marked `failed`.

Statuses: pending, sent, no_email (screen only), failed (every retry failed: `ca-service notices
list --failed`), cancelled (the certificate was renewed, revoked or expired before the email
could go). A crash after the SMTP server accepted the message but before the commit can resend
it once: SMTP has no transaction to join, so "exactly once" is exact up to that window.
"""

from __future__ import annotations

import logging
import smtplib
import ssl
from dataclasses import dataclass

from ca_service import metrics
from ca_service.context import ServiceContext
from ca_service.services.certificates.views import days_remaining
from ca_service.services.notices.texts import expiry_email
from ca_service.store import certificates, notices, users
from ca_service.store.db import transaction
from ca_service.store.validity import is_valid

log = logging.getLogger("ca_service.mailer")


class EmailDeliveryError(Exception):
    """The SMTP server did not accept the message; the job is retried."""


@dataclass(frozen=True)
class MailOutcome:
    notice_id: int
    status: str  # sent | already-sent | no_email | cancelled | not-found
    attempts: int


def _deliver(ctx: ServiceContext, message: object) -> None:
    s = ctx.settings
    with smtplib.SMTP(s.smtp_host, s.smtp_port, timeout=20) as smtp:
        if s.smtp_starttls:
            smtp.starttls(context=ssl.create_default_context())
        if s.smtp_username and s.smtp_password:
            smtp.login(s.smtp_username, s.smtp_password)
        smtp.send_message(message)  # type: ignore[arg-type]


def send_notice_email(ctx: ServiceContext, notice_id: int, *, final_attempt: bool = False) -> MailOutcome:
    error: str | None = None
    with transaction(ctx.sessions) as session:
        notice = notices.lock(session, notice_id)
        if notice is None:
            return MailOutcome(notice_id, "not-found", 0)
        if notice.email_status in ("sent", "no_email", "cancelled"):
            done = "already-sent" if notice.email_status == "sent" else notice.email_status
            return MailOutcome(notice_id, done, notice.email_attempts)
        user = users.get_user(session, notice.login_id)
        if user is None or not user.email:
            notice.email_status = "no_email"
            return MailOutcome(notice_id, "no_email", notice.email_attempts)
        now = ctx.clock.now()
        cert = certificates.by_serial(session, notice.serial)
        if cert is None or not is_valid(cert, now):
            # renewed, revoked or expired while the email waited (an SMTP or Redis outage): the
            # screen no longer shows the notice, and the email would tell the user to renew it
            notice.email_status = "cancelled"
            log.info("notice %s email cancelled: certificate %s no longer valid", notice_id, notice.serial)
            return MailOutcome(notice_id, "cancelled", notice.email_attempts)
        message = expiry_email(
            to=user.email, sender=ctx.settings.mail_from, login_id=notice.login_id, serial=notice.serial,
            not_after=notice.not_after, days=days_remaining(notice.not_after, now, ctx.settings.tz), tz=ctx.settings.tz,
        )  # fmt: skip
        notice.email_attempts += 1
        try:
            _deliver(ctx, message)
        except (OSError, smtplib.SMTPException) as exc:
            error = f"{type(exc).__name__}: {exc}"[:500]
            notice.email_last_error = error
            notice.email_status = "failed" if final_attempt else "pending"
            log.warning("notice %s email attempt %s failed: %s", notice_id, notice.email_attempts, error)
        else:
            notice.email_status, notice.email_sent_at, notice.email_last_error = "sent", now, None
            log.info("notice %s email sent (attempt %s)", notice_id, notice.email_attempts)
        attempts = notice.email_attempts
    metrics.NOTICE_EMAILS.labels("failed" if error is not None else "sent").inc()
    if error is not None:
        raise EmailDeliveryError(error)
    return MailOutcome(notice_id, "sent", attempts)
