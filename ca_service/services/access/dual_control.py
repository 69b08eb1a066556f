"""Dual control as a service rule. With CA_DUAL_CONTROL on, revoking a
master user's certificate, switching an organisation's login method and changing a role to or
from master are carried out only by services/helpdesk/approvals.py running a request that a second,
different operator approved. Every other caller -- a console view, the operator API token, the
CLI, a script -- gets ApprovalRequired (409 approval-required): the rule lives here, under every
path, not in the console's forms.

Imported by the services it guards (revocation, login_method, registry), which approvals.py
imports in turn; so the error and the check live in this small module of their own."""

from __future__ import annotations

from ca_service.context import Actor, ServiceContext
from ca_service.errors import Conflict


class ApprovalRequired(Conflict):
    code, title = "approval-required", "A second operator's approval is required"


def carrying_out_approval(actor: Actor) -> bool:
    """True only inside approvals._run: the approver acts on a different operator's request."""
    return actor.requested_by is not None and actor.requested_by != actor.client_name


def require_approval(ctx: ServiceContext, actor: Actor, what: str) -> None:
    """Raise ApprovalRequired when dual control is on and this is not an approval being carried out."""
    if not ctx.settings.dual_control or carrying_out_approval(actor):
        return
    raise ApprovalRequired(
        f"dual control is on: {what} is carried out only when a second operator approves it. "
        "Ask for it in the operator console (/console/), where another operator approves it within 24 hours"
    )
