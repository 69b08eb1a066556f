"""Plain-word texts for codes the services return (translated; the msgids are English)."""

from __future__ import annotations

from flask_babel import gettext as _
from flask_babel import lazy_gettext as L

from ca_service.errors import ServiceError

ERRORS = {
    "login-refused": L("The username, password or one-time code is wrong."),
    "operator-locked": L(
        "Too many failed logins: this account is locked for a while. Ask another operator to reset it, or wait."
    ),
    "ticket-required": L("Enter the paper ticket number (the help desk's procedure requires it)."),
    "already-revoked": L("This certificate was already revoked."),
    "not-found": L("Not found."),
    "certificate-not-found": L("No certificate has this serial number."),
    "user-not-found": L("No user has this login ID."),
    "organization-not-found": L("No organisation has this ID."),
    "validation-error": L("Some fields are missing or invalid."),
    "queue-unavailable": L("The job queue is unavailable; try again shortly."),
    "same-operator": L("Dual control: a second, different operator must approve this request."),
    "approval-not-pending": L("This request is no longer waiting for approval (decided or expired)."),
    "notice-not-failed": L("This notice's email has not failed."),
    "job-not-found": L("No such job."),
    "job-not-requeueable": L("This job was not written by this service (unreadable or unknown): it cannot be retried."),
}

REASONS = {
    "no-certificate": L(
        "The organisation logs in with certificates, and this user has never been issued one. Issue a certificate."
    ),
    "certificate-required": L(
        "The organisation logs in with certificates: ID and password alone are refused. The user needs a certificate."
    ),
    "expired": L("The user's newest certificate has expired. Issue a new certificate."),
    "revoked": L("The user's newest certificate was revoked. Issue a new certificate."),
    "not-yet-valid": L("The user's newest certificate is not valid yet (its start date is in the future)."),
    "unknown-issuer": L("The certificate was not issued by this CA."),
    "unknown-certificate": L("The certificate is not the one registered for this user."),
    "login-id-mismatch": L("The certificate belongs to another login ID."),
    "login-method-not-certificate": L("The organisation logs in with ID and password, not certificates."),
    "user-not-found": L("The login ID is not registered."),
}

LABELS = {
    "certificate": L("Certificate method"),
    "id_password": L("ID and password"),
    "master": L("Master user"),
    "general": L("General user"),
    "active": L("Valid"),
    "revoked": L("Revoked"),
    "expired": L("Expired"),
    "unspecified": L("Unspecified"),
    "key_compromise": L("Key compromise"),
    "affiliation_changed": L("Affiliation changed"),
    "superseded": L("Superseded (renewed)"),
    "cessation_of_operation": L("Cessation of operation"),
    "privilege_withdrawn": L("Privilege withdrawn"),
    "pending": L("Waiting for approval"),
    "running": L("Running"),
    "approved": L("Approved and done"),
    "rejected": L("Rejected"),
    "failed": L("Failed"),
    "sent": L("Sent"),
    "no_email": L("No email address"),
    "cancelled": L("Cancelled"),
    "queued": L("Queued"),
    "started": L("Running"),
    "finished": L("Finished"),
    "revocation": L("Revocation"),
    "login_method_switch": L("Login method switch"),
}


def error_text(err: ServiceError) -> str:
    known = ERRORS.get(err.code)
    return f"{known} ({err.detail})" if known is not None else _("The request was refused: %(detail)s", detail=err.detail)


def label(value: str | None) -> str:
    if value is None:
        return "—"
    known = LABELS.get(value)
    return str(known) if known is not None else value


def reason_text(reason: str | None) -> str:
    if reason is None:
        return _("The login check allows this user to log in.")
    known = REASONS.get(reason)
    return str(known) if known is not None else reason
