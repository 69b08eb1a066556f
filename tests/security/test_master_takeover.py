"""Finding 1 (issue 13): a stolen front-end token must not take over a master user's certificate
by rewriting roles with PUT /v1/users (R9: a master is a paper procedure, operator + ticket)."""

from __future__ import annotations

from tests.support.pki import make_csr


def _put(api, login_id, role, *, as_role="frontend", ticket=None, email=None):
    body = {"org_id": "acme", "role": role, "email": email or f"{login_id}@example.com"}
    if ticket is not None:
        body["ticket"] = ticket
    return api.put(f"/v1/users/{login_id}", role=as_role, json=body)


def test_frontend_cannot_demote_a_master_to_revoke_and_replace_its_certificate(live):
    """The attack of the review: demote master A, promote B, revoke A "as" B, issue for A with the
    attacker's key, restore the roles. Each role step is refused, so the chain never starts."""
    live.org("acme")
    live.user("boss", "acme", role="master")
    live.user("clerk", "acme")
    boss_cert = live.issue("boss", make_csr()[1]).json
    demote = _put(live, "boss", "general")
    assert demote.status == 403 and demote.code == "not-permitted", demote
    promote = _put(live, "clerk", "master")
    assert promote.status == 403 and promote.code == "not-permitted", promote
    revoke = live.post(
        f"/v1/certificates/{boss_cert['serial']}/revocation",
        json={"reason": "key_compromise", "acting_login_id": "clerk"},
    )
    assert revoke.status == 403 and revoke.code == "not-permitted", revoke
    assert live.issue("boss", make_csr()[1]).code == "active-certificate-exists"
    # nothing changed: boss is still master with the original certificate
    boss = live.get("/v1/users/boss").json
    assert boss["role"] == "master" and boss["current_certificate"]["serial"] == boss_cert["serial"]
    assert live.get("/v1/users/clerk").json["role"] == "general"


def test_frontend_cannot_create_a_master(live):
    live.org("acme")
    r = _put(live, "newboss", "master")
    assert r.status == 403 and r.code == "not-permitted", r
    assert live.get("/v1/users/newboss").status == 404


def test_operator_needs_a_ticket_for_master_changes_and_it_is_audited(live):
    live.org("acme")
    no_ticket = _put(live, "boss", "master", as_role="operator")
    assert no_ticket.status == 400 and no_ticket.code == "ticket-required", no_ticket
    assert _put(live, "boss", "master", as_role="operator", ticket="PAPER-77").status == 201
    live.user("clerk", "acme")
    assert _put(live, "clerk", "master", as_role="operator").code == "ticket-required"
    assert _put(live, "boss", "general", as_role="operator").code == "ticket-required"
    assert _put(live, "boss", "general", as_role="operator", ticket="PAPER-78").status == 200
    events = live.get("/v1/audit-events", role="auditor", params={"limit": 1000}).json["items"]
    tickets = [(e["action"], e["details"].get("ticket")) for e in events if e["target_id"] == "boss"]
    assert ("user.created", "PAPER-77") in tickets and ("user.updated", "PAPER-78") in tickets


def test_frontend_still_creates_general_users_and_edits_contact_fields(live):
    live.org("acme")
    live.user("boss", "acme", role="master")
    assert _put(live, "clerk", "general").status == 201
    r = live.put("/v1/users/boss", json={"org_id": "acme", "role": "master", "email": "new@example.com", "display_name": "B"})
    assert r.status == 200 and r.json["email"] == "new@example.com" and r.json["display_name"] == "B", r
    assert _put(live, "clerk", "general", email="c2@example.com").json["email"] == "c2@example.com"
