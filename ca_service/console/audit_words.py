"""An audit event as the help desk reads it: a label for every action and detail key in
both languages (the catalogue; the msgids are English), each value shown by its type (times in
CA_TIMEZONE, reasons and methods translated, booleans as words, empty values left out) and who
acted in words ("master user ts-yamada (山田 太郎) — via the bank's front end", operators by name).

tests/console/test_console_words.py collects every action and detail key the services write
(audit.record / audit.event / uow.audit calls) and every problem code: a new one without a label fails it."""

from __future__ import annotations

import json
import re
from datetime import datetime
from typing import Any

from flask import g
from flask_babel import gettext as _
from flask_babel import lazy_gettext as L

from ca_service.console.i18n import local_time
from ca_service.console.messages import label
from ca_service.context import ServiceContext
from ca_service.errors import NotFound
from ca_service.services.access import clients, operators
from ca_service.services.registry import organisations as registry

ACTIONS = {
    "api_client.created": L("API client registered"),
    "api_client.disabled": L("API client disabled"),
    "api_client.rotated": L("API client's token rotated"),
    "approval.requested": L("Approval requested"),
    "approval.approved": L("Request approved and carried out"),
    "approval.rejected": L("Request rejected or withdrawn"),
    "approval.failed": L("Approved request failed"),
    "approval.expired": L("Request expired"),
    "ca.created": L("CA created"),
    "ca.retired": L("CA retired"),
    "certificate.issued": L("Certificate issued"),
    "certificate.renewed": L("Certificate renewed"),
    "certificate.issuance_refused": L("Issuance refused (hourly limit)"),
    "certificate.revocation_refused": L("Revocation refused (hourly limit)"),
    "certificate.revoked": L("Certificate revoked"),
    "enrolment_code.minted": L("Enrolment code made"),
    "enrolment_code.rejected": L("Wrong enrolment code tried"),
    "enrolment_code.used": L("Enrolment code used"),
    "enrolment_code.voided": L("Enrolment codes voided"),
    "crl.publication_requested": L("CRL publication requested"),
    "crl.published": L("CRL published"),
    "job.requeued": L("Failed job retried"),
    "notice.email_retried": L("Notice email sent again"),
    "webhook.delivery_retried": L("Event delivery to the front end retried"),
    "ocsp.responder_issued": L("OCSP responder certificate issued"),
    "operator.created": L("Operator registered"),
    "operator.disabled": L("Operator disabled"),
    "operator.locked": L("Operator locked out"),
    "operator.login": L("Operator logged in"),
    "operator.login_failed": L("Operator login failed"),
    "operator.logout": L("Operator logged out"),
    "operator.reset": L("Operator's password reset"),
    "organization.created": L("Organisation registered"),
    "organization.login_method_switched": L("Login method switched"),
    "organization.renamed": L("Organisation renamed"),
    "user.created": L("User registered"),
    "user.updated": L("User changed"),
}

DETAILS = {
    "address": L("Client address"),
    "voided_older": L("Older codes voided"),
    "voided": L("Codes voided"),
    "url": L("Receiver URL"),
    "event_type": L("Event type"),
    "event_id": L("Event ID"),
    "code_id": L("Code number"),
    "attempts": L("Wrong attempts"),
    "approval_id": L("Request number"),
    "approved_by": L("Approved by"),
    "ceremony": L("At a key ceremony"),
    "crl_number": L("CRL number"),
    "display_name": L("Display name"),
    "email": L("Email"),
    "entries": L("Entries"),
    "error": L("Error"),
    "expires_at": L("Expires"),
    "failures": L("Failed attempts"),
    "function": L("Function"),
    "issuer": L("Issuer"),
    "key": L("Key"),
    "kind": L("Kind"),
    "limit": L("Limit per hour"),
    "login_id": L("Login ID"),
    "login_method": L("Login method"),
    "name": L("Name"),
    "not_after": L("Valid until"),
    "old_name": L("Previous name"),
    "org_id": L("Organisation"),
    "outcome": L("Outcome"),
    "predecessor": L("Renewal of"),
    "previous": L("Previous login method"),
    "previous_token_valid_until": L("Old token valid until"),
    "queue": L("Queue"),
    "reason": L("Reason"),
    "requested_by": L("Requested by"),
    "retry_after": L("Retry after (seconds)"),
    "revoked": L("Certificates revoked"),
    "role": L("Role"),
    "serial": L("Serial number"),
    "subject": L("Subject"),
    "ticket": L("Paper ticket number"),
    "until": L("Locked until"),
}
# values that are codes with a label of their own (LABELS in messages.py)
LABELLED_VALUES = {"reason", "role", "login_method", "previous", "kind"}
_RFC3339 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d(:\d\d(\.\d+)?)?(Z|[+-]\d\d:\d\d)$")


def action_label(action: str) -> str:
    known = ACTIONS.get(action)
    return str(known) if known is not None else action


def value_text(key: str, value: Any) -> str:
    """One detail value shown by its type."""
    if isinstance(value, bool):
        return _("Yes") if value else _("No")
    if isinstance(value, datetime) or (isinstance(value, str) and _RFC3339.match(value)):
        return local_time(value)
    if key in LABELLED_VALUES and isinstance(value, str):
        return label(value)
    if isinstance(value, list | dict):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def details(values: dict[str, Any]) -> list[tuple[str, str]]:
    """(label, value) for each detail that says something: None and "" are left out."""
    shown = []
    for key in sorted(values):
        value = values[key]
        if value is None or value == "":
            continue
        known = DETAILS.get(key)
        shown.append((str(known) if known is not None else key, value_text(key, value)))
    return shown


def actors(ctx: ServiceContext, events: list[dict[str, Any]]) -> dict[str, str]:
    """Who acted, in words, by each event's (client_name, acting_login_id) key `who_key`."""
    operator_names = {o.username: o.display_name or o.username for o in operators.list_operators(ctx)}
    client_roles = {c.name: c.role for c in clients.list_clients(ctx)}
    users: dict[str, registry.UserView | None] = {}
    words: dict[str, str] = {}
    for event in events:
        key = who_key(event)
        if key in words:
            continue
        client, login_id = event.get("client_name") or "", event.get("acting_login_id")
        if login_id and login_id not in users:
            try:
                users[login_id] = registry.get_user(ctx, login_id)
            except NotFound:
                users[login_id] = None
        words[key] = _actor(client, login_id, users.get(login_id) if login_id else None, operator_names, client_roles)
    return words


def operator_words(ctx: ServiceContext, client_name: str | None) -> str:
    """A console operator (`console:sato`) by name, as the audit page names them; anything else as is."""
    if not client_name or not client_name.startswith("console:"):
        return client_name or "—"
    names: dict[str, str] | None = g.get("operator_names")
    if names is None:  # once per page
        names = g.operator_names = {o.username: o.display_name or o.username for o in operators.list_operators(ctx)}
    username = client_name.removeprefix("console:")
    return _("Operator %(name)s", name=names.get(username, username))


def who_key(event: dict[str, Any]) -> str:
    return f"{event.get('client_name') or ''}\n{event.get('acting_login_id') or ''}"


def _actor(
    client: str, login_id: str | None, user: registry.UserView | None, operator_names: dict[str, str], roles: dict[str, str]
) -> str:
    if client.startswith("console:"):
        username = client.removeprefix("console:")
        return _("Operator %(name)s", name=operator_names.get(username, username))
    if client.startswith("cli:"):
        return _("Command line (%(user)s)", user=client.removeprefix("cli:"))
    via = _("the bank's front end") if roles.get(client) == "frontend" else _("API client %(name)s", name=client)
    if not login_id:
        if client not in roles:  # the service itself (approval-sweep, scheduler ...)
            return client or "—"
        return _("The bank's front end") if roles[client] == "frontend" else via
    role = label(user.role) if user is not None else _("User")
    if user is not None and user.display_name:
        return _("%(role)s %(login_id)s (%(name)s) — via %(via)s", role=role, login_id=login_id, name=user.display_name, via=via)
    return _("%(role)s %(login_id)s — via %(via)s", role=role, login_id=login_id, via=via)
