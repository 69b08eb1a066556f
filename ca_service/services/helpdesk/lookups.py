"""The help desk's read-only look-ups (CLI today, the operator console next): search, one
certificate with who revoked it and on which ticket, the audit trail filtered, notices.
The SQL is in ca_service/store/helpdesk_search.py."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from ca_service.context import ServiceContext
from ca_service.services.audit import trail as audit
from ca_service.services.certificates import views as certificates
from ca_service.services.certificates.views import CertificateView
from ca_service.store import helpdesk_search
from ca_service.store.db import reading
from ca_service.store.helpdesk_search import AuditQuery, SearchMatches

__all__ = ["AuditQuery", "CertificateDetail", "SearchMatches", "audit_events", "certificate_detail", "list_notices", "search"]


def search(ctx: ServiceContext, query: str, limit: int = 20) -> SearchMatches:
    with reading(ctx.sessions) as session:
        return helpdesk_search.search(session, query, limit)


@dataclass(frozen=True)
class CertificateDetail:
    certificate: CertificateView
    revoked_by_client: str | None  # the API client (or cli:<user>) that revoked it
    revoked_by_user: str | None  # the bank user (an organisation's master) it acted for, if any
    revocation_ticket: str | None  # the help desk's paper ticket, if any

    def summary(self) -> dict[str, Any]:
        fields = {k: v for k, v in asdict(self.certificate).items() if k != "certificate_pem"}
        fields.update(
            revoked_by_client=self.revoked_by_client,
            revoked_by_user=self.revoked_by_user,
            revocation_ticket=self.revocation_ticket,
        )
        return fields


def certificate_detail(ctx: ServiceContext, serial: str) -> CertificateDetail:
    view = certificates.get_certificate(ctx, serial)  # NotFound for an unknown serial
    with reading(ctx.sessions) as session:
        record = helpdesk_search.revocation_record(session, view.serial)
    by_client, by_login, ticket = (record.revoked_by_client, record.revoked_by_login_id, record.ticket) if record else (None,) * 3
    return CertificateDetail(view, by_client, by_login, ticket)


def audit_events(ctx: ServiceContext, query: AuditQuery) -> list[dict[str, Any]]:
    with reading(ctx.sessions) as session:
        return [audit.event_dict(ev) for ev in helpdesk_search.audit_events(session, query)]


def list_notices(
    ctx: ServiceContext, *, failed_only: bool, login_id: str | None = None, limit: int = 200
) -> list[dict[str, Any]]:
    with reading(ctx.sessions) as session:
        rows = helpdesk_search.notices(session, failed_only=failed_only, login_id=login_id, limit=limit)
        return [
            {
                "id": n.id,
                "kind": n.kind,
                "login_id": n.login_id,
                "serial": n.serial,
                "not_after": n.not_after,
                "created_at": n.created_at,
                "email_status": n.email_status,
                "attempts": n.email_attempts,
                "last_error": n.email_last_error,
            }
            for n in rows
        ]
