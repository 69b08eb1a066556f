"""Dual control: an approval whose approving request died mid-action (services/helpdesk/approvals.
settle_interrupted, run by the sweep). Before, it stayed `running` for good: nobody could approve
or reject it again, and the console never showed what had happened."""

from __future__ import annotations

import pytest

from ca_service.services.access import operators
from ca_service.services.audit import trail as audit
from ca_service.services.background.jobs import sweep_job
from ca_service.services.certificates import revocation
from ca_service.services.helpdesk import approvals
from ca_service.services.helpdesk import lookups as helpdesk
from ca_service.store import operators as approval_rows
from ca_service.store.db import transaction
from tests.test_operations_cli import setup_org

ALICE, BOB = operators.console_actor("alice"), operators.console_actor("bob")


def _interrupted(ctx, kind: str, target: str, params: dict[str, str]) -> int:
    """A request approved by bob whose process died after the claim, before recording an outcome."""
    pending = approvals.request(ctx, ALICE, kind, target, params, "HD-9")
    with transaction(ctx.sessions) as session:
        assert approval_rows.claim_approval(session, pending.id, ctx.clock.now(), BOB.client_name)
    return pending.id


@pytest.mark.parametrize("done", [False, True], ids=["not-carried-out", "carried-out"])
def test_an_interrupted_revocation_is_settled_from_the_certificate(ctx, api, clock, done):
    boss = setup_org(api, "acme", ())["acme-boss"]
    approval_id = _interrupted(ctx, approvals.REVOCATION, boss, {"reason": "key_compromise"})
    if done:  # the revocation committed; the process died before it wrote the outcome
        revocation.revoke(ctx, BOB, boss, reason="key_compromise", ticket="HD-9")
    clock.travel(minutes=5)
    assert approvals.settle_interrupted(ctx) == 0  # may still be running: left alone
    assert approvals.get(ctx, approval_id).status == "running"
    clock.travel(minutes=6)
    assert approvals.settle_interrupted(ctx) == 1
    settled = approvals.get(ctx, approval_id)
    assert settled.status == ("approved" if done else "failed")
    assert settled.decided_by == BOB.client_name and settled.outcome
    assert helpdesk.certificate_detail(ctx, boss).certificate.status == ("revoked" if done else "active")
    assert approvals.settle_interrupted(ctx) == 0  # once
    audit.seal_pending(ctx, wait=True)
    [event] = helpdesk.audit_events(ctx, helpdesk.AuditQuery(action=f"approval.{settled.status}", target=boss))
    assert event["client_name"] == approvals.SWEEP.client_name
    assert event["details"]["requested_by"] == ALICE.client_name and event["details"]["approved_by"] == BOB.client_name


def test_an_interrupted_switch_is_settled_from_the_organisation_by_the_sweep_job(ctx, api, clock):
    setup_org(api, "acme", ())
    approval_id = _interrupted(ctx, approvals.SWITCH, "acme", {"login_method": "id_password"})
    clock.travel(minutes=11)
    assert sweep_job()["approvals_settled"] == 1  # the scheduled sweep does it
    assert approvals.get(ctx, approval_id).status == "failed"  # acme is still on certificates


def test_a_settled_request_can_be_asked_again_and_approved(ctx, api, clock):
    boss = setup_org(api, "acme", ())["acme-boss"]
    _interrupted(ctx, approvals.REVOCATION, boss, {"reason": "key_compromise"})
    clock.travel(minutes=11)
    approvals.settle_interrupted(ctx)
    again = approvals.request(ctx, ALICE, approvals.REVOCATION, boss, {"reason": "key_compromise"}, "HD-10")
    assert approvals.approve(ctx, BOB, again.id).status == "approved"
    assert helpdesk.certificate_detail(ctx, boss).certificate.status == "revoked"
