"""Plain-word texts for codes the services return (translated; the msgids are English)."""

from __future__ import annotations

from flask_babel import get_locale
from flask_babel import gettext as _
from flask_babel import lazy_gettext as L

from ca_service.errors import ServiceError

ERRORS = {
    "audit-sink-unavailable": L("The audit trail's checkpoint file cannot be written; ask the operations team."),
    "issuance-limit-reached": L("Too many certificates were issued in this organisation within the hour. Try again later."),
    "delivery-not-found": L("There is no such event delivery."),
    "delivery-not-failed": L("Only a failed event delivery can be sent again."),
    "login-refused": L("The username, password or one-time code is wrong."),
    "operator-locked": L(
        "Too many failed logins: this account is locked for a while. Ask another operator to reset it, or wait."
    ),
    "login-attempts-limited": L("Too many login attempts from this address. Wait a minute and try again."),
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
    "approval-required": L("Dual control: this change is carried out only when a second operator approves it."),
    "notice-not-failed": L("This notice's email has not failed."),
    "job-not-found": L("No such job."),
    # every other problem code a service raises (tests/console/test_console_words.py collects them)
    "bad-request": L("The request was refused."),
    "conflict": L("The request conflicts with the current state."),
    "not-permitted": L("This operation is not permitted."),
    "unavailable": L("A service this needs is unavailable; try again shortly."),
    "active-certificate-exists": L("The user already has a valid certificate."),
    "approval-not-found": L("No such request."),
    "audit-key-unavailable": L("The audit trail's signing key is unavailable."),
    "ca-expired": L("The issuing CA has expired."),
    "ca-key-unavailable": L("The CA's key is unavailable."),
    "ca-not-found": L("No such CA."),
    "ca-not-initialised": L("The CA has not been set up yet."),
    "ca-rollover-required": L("The issuing CA must be renewed (rollover) first."),
    "certificate-not-active": L("Only a valid certificate can be renewed."),
    "client-disabled": L("This API client is disabled."),
    "client-exists": L("An API client with this name already exists."),
    "client-not-found": L("No such API client."),
    "console-not-configured": L("The console is not configured."),
    "crl-not-found": L("No CRL has been published yet."),
    "csr-signature-invalid": L("The certificate request's signature is invalid."),
    "database-unavailable": L("The database is unavailable; try again shortly."),
    "forbidden": L("This client's role may not do this."),
    "invalid-csr": L("The certificate request (CSR) is not valid."),
    "key-rejected": L("The key in the certificate request is not accepted."),
    "key-reused": L("This key was already used for another certificate."),
    "login-id-taken": L("This login ID is already registered."),
    "login-method-change-requires-ticket": L("Switching the login method needs the paper ticket number."),
    "login-method-not-certificate": L("The organisation logs in with ID and password, not certificates."),
    "notice-not-found": L("No such notice."),
    "operator-exists": L("An operator with this username already exists."),
    "operator-not-found": L("No such operator."),
    "organization-change-refused": L("A login ID never moves to another organisation."),
    "payload-too-large": L("The request is too large."),
    "renewal-not-open": L("This certificate cannot be renewed yet."),
    "revocation-limit-reached": L("Too many revocations for this organisation in the last hour; try again later."),
    "serial-collision": L("A serial number collided; try again."),
    "too-many-authentication-failures": L("Too many failed authentications; wait and try again."),
    "too-many-requests": L("Too many requests; wait and try again."),
    "unauthenticated": L("Authentication is required."),
    "unsupported-media-type": L("The request's content type is not accepted."),
    "weak-signature-algorithm": L("The certificate request uses a weak signature algorithm."),
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
    "revoked": L(
        "The user's newest certificate was revoked. Next, the user installs a new one from the 電子証明書発行 (issue a "
        "certificate) button on the login page."
    ),
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
    "role_change": L("Role change"),
}


# a master user's certificate is a paper procedure (FAQ Q11): who does what next
MASTER_REASONS = {
    "revoked": L(
        "The master user's newest certificate was revoked. Next, the master user installs a new one from the "
        "電子証明書発行 (issue a certificate) button on the login page, with the code from the paper procedure."
    ),
    "no-certificate": L(
        "The organisation logs in with certificates, and this master user has never been issued one. The master user "
        "installs one from the 電子証明書発行 (issue a certificate) button on the login page, with the code the bank's "
        "site shows once the login ID and password are checked."
    ),
}


def error_text(err: ServiceError) -> str:
    """The code's own sentence in the operator's language; the service's English detail is added
    only on the English page (a Japanese page never mixes in English)."""
    known = ERRORS.get(err.code)
    if known is None:
        return _("The request was refused (code %(code)s).", code=err.code)
    english = get_locale() is not None and str(get_locale()) == "en"
    return f"{known} ({err.detail})" if english and err.detail and err.detail != str(known) else str(known)


def label(value: str | None) -> str:
    if value is None:
        return "—"
    known = LABELS.get(value)
    return str(known) if known is not None else value


def reason_text(reason: str | None, role: str | None = None) -> str:
    if reason is None:
        return _("The login check allows this user to log in.")
    known = (MASTER_REASONS.get(reason) if role == "master" else None) or REASONS.get(reason)
    return str(known) if known is not None else reason
