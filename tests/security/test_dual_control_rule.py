"""Finding 5 (issue 26): dual control was a console feature, not a rule. With CA_DUAL_CONTROL on,
the services refuse to revoke a master's certificate, switch a login method or change a role to
or from master unless a second operator's approval is being carried out: the API and the CLI get
409 approval-required (ask in the console), the console files an approval request."""

from __future__ import annotations

import dataclasses

import pytest
from click.testing import CliRunner

from ca_service.api.app import create_app
from ca_service.cli.main import cli
from ca_service.services.access import operators
from ca_service.services.certificates import revocation
from ca_service.services.helpdesk import approvals
from ca_service.services.registry import organisations as registry
from tests.support.api import Api
from tests.test_operations_cli import setup_org

ALICE, BOB = operators.console_actor("alice"), operators.console_actor("bob")


@pytest.fixture
def dual(ctx):
    """The same database and clock, dual control on."""
    return dataclasses.replace(ctx, settings=dataclasses.replace(ctx.settings, dual_control=True))


@pytest.fixture
def dual_api(dual, tokens) -> Api:
    return Api(tokens, flask_client=create_app(dual).test_client())


def _role(api: Api, login_id: str, role: str, ticket: str = "HD-1"):
    return api.put(f"/v1/users/{login_id}", role="operator", json={"org_id": "acme", "role": role, "ticket": ticket})


def _status(api: Api, serial: str) -> str:
    return api.get(f"/v1/certificates/{serial}", role="operator").json["status"]


def test_attack_one_operator_demotes_revokes_and_promotes_a_master(api, dual_api):
    """The review's attack through the operator API token: demote the master, revoke its
    certificate (a general user's: no approval), promote it again. Before the fix: 200, 200, 200."""
    boss = setup_org(api, "acme", ())["acme-boss"]
    demote = _role(dual_api, "acme-boss", "general")
    assert demote.status == 409 and demote.code == "approval-required", demote
    revoke = dual_api.post(
        f"/v1/certificates/{boss}/revocation", role="operator", json={"reason": "key_compromise", "ticket": "HD-2"}
    )
    assert revoke.status == 409 and revoke.code == "approval-required", revoke
    assert _status(api, boss) == "active"
    assert api.get("/v1/users/acme-boss").json["role"] == "master"
    # promoting a general user (or creating a master) is dual-controlled too
    api.user("taro", "acme")
    assert _role(dual_api, "taro", "master").code == "approval-required"
    assert _role(dual_api, "newboss", "master").code == "approval-required"
    assert api.get("/v1/users/newboss").status == 404


def test_attack_operator_token_switches_a_login_method_with_only_a_ticket(api, dual_api):
    serials = setup_org(api, "acme", ("taro",))
    r = dual_api.post(
        "/v1/organizations/acme/login-method", role="operator", json={"login_method": "id_password", "ticket": "HD-3"}
    )
    assert r.status == 409 and r.code == "approval-required", r
    assert "console" in r.json["detail"]
    assert api.get("/v1/organizations/acme").json["login_method"] == "certificate"
    assert all(_status(api, s) == "active" for s in serials.values())


def test_attack_cli_revokes_a_masters_certificate_and_switches_with_only_a_ticket(api):
    serials = setup_org(api, "acme", ("taro",))
    runner, env = CliRunner(), {"CA_DUAL_CONTROL": "true"}
    revoke = runner.invoke(cli, ["revoke", serials["acme-boss"], "--reason", "key_compromise", "--ticket", "HD-4"], env=env)
    assert revoke.exit_code == 1 and "approval-required" in revoke.output, revoke.output
    switch = runner.invoke(cli, ["orgs", "switch-method", "acme", "--to", "id_password", "--ticket", "HD-5"], env=env)
    assert switch.exit_code == 1 and "approval-required" in switch.output, switch.output
    assert _status(api, serials["acme-boss"]) == "active"
    assert api.get("/v1/organizations/acme").json["login_method"] == "certificate"
    # a general user's certificate is still revoked at once, under dual control too
    general = runner.invoke(cli, ["revoke", serials["taro"], "--reason", "key_compromise", "--ticket", "HD-6"], env=env)
    assert general.exit_code == 0, general.output
    assert _status(api, serials["taro"]) == "revoked"


def test_the_services_refuse_a_direct_call_and_carry_out_an_approved_one(dual, api):
    """Any caller (a console view, a script, a future path) meets the rule in the service itself."""
    boss = setup_org(api, "acme", ())["acme-boss"]
    with pytest.raises(approvals.ApprovalRequired):
        revocation.revoke(dual, ALICE, boss, reason="key_compromise", ticket="HD-7")
    with pytest.raises(approvals.ApprovalRequired):
        registry.put_user(dual, ALICE, "acme-boss", org_id="acme", role="general", email=None, display_name=None, ticket="HD-7")
    asked = approvals.request(dual, ALICE, approvals.ROLE, "acme-boss", {"role": "general"}, "HD-7")
    assert registry.get_user(dual, "acme-boss").role == "master"  # not yet
    done = approvals.approve(dual, BOB, asked.id)
    assert done.status == "approved", done
    assert registry.get_user(dual, "acme-boss").role == "general"
    # the demoted master's certificate may now be revoked at once: two operators made it general
    assert revocation.revoke(dual, ALICE, boss, reason="key_compromise", ticket="HD-8").status == "revoked"


def test_a_role_change_request_is_checked_and_the_same_operator_cannot_approve(dual, api):
    setup_org(api, "acme", ("taro",))
    with pytest.raises(Exception) as unknown:
        approvals.request(dual, ALICE, approvals.ROLE, "nobody", {"role": "master"}, "HD-9")
    assert getattr(unknown.value, "code", None) == "user-not-found"
    with pytest.raises(Exception) as same:
        approvals.request(dual, ALICE, approvals.ROLE, "taro", {"role": "general"}, "HD-9")
    assert getattr(same.value, "code", None) == "validation-error"
    asked = approvals.request(dual, ALICE, approvals.ROLE, "taro", {"role": "master"}, "HD-9")
    with pytest.raises(Exception) as refused:
        approvals.approve(dual, ALICE, asked.id)
    assert getattr(refused.value, "code", None) == "same-operator"
    assert approvals.approve(dual, BOB, asked.id).status == "approved"
    assert registry.get_user(dual, "taro").role == "master"


def test_the_console_asks_for_a_role_change_and_a_second_operator_carries_it_out(ctx, api):
    from tests.console.test_console_app import Console, _with
    from tests.support.console import make_operator

    setup_org(api, "acme", ("taro",))
    app = _with(ctx, dual_control=True)
    alice = Console(app, make_operator(ctx, "alice"))
    page = "/console/users/acme-boss/role"
    asked = alice.post(page, {"role": "general", "ticket": "HD-10"}, page=page)
    assert asked.status_code == 302 and "/console/approvals/" in asked.headers["Location"], asked.text
    approval_id = int(asked.headers["Location"].rsplit("/", 1)[1])
    assert api.get("/v1/users/acme-boss").json["role"] == "master"  # not yet
    shown = alice.get(f"/console/approvals/{approval_id}").text
    assert "/console/users/acme-boss" in shown
    bob = Console(app, make_operator(ctx, "bob"))
    done = bob.post(f"/console/approvals/{approval_id}/decision", {"decision": "approve"})
    assert done.status_code == 302, done.text
    assert api.get("/v1/users/acme-boss").json["role"] == "general"
    assert approvals.get(ctx, approval_id).outcome == "master -> general"


def test_an_interrupted_role_change_is_settled_by_the_sweep(dual, api, clock):
    from ca_service.store import operators as approval_rows
    from ca_service.store.db import transaction

    setup_org(api, "acme", ())
    asked = approvals.request(dual, ALICE, approvals.ROLE, "acme-boss", {"role": "general"}, "HD-11")
    with transaction(dual.sessions) as session:  # bob's approving request died after the claim
        assert approval_rows.claim_approval(session, asked.id, dual.clock.now(), BOB.client_name)
    clock.travel(minutes=11)
    assert approvals.settle_interrupted(dual) == 1
    assert approvals.get(dual, asked.id).status == "failed"  # still master: not carried out
