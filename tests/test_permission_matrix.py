"""Who may revoke what (DESIGN §4, R9, R10): every combination of caller role, acting user,
organisation and owner role, against an expected outcome written from the rules."""

from __future__ import annotations

import itertools

import pytest

from tests.support.pki import make_csr

CALLERS = ("frontend", "operator", "auditor")
ACTING = ("none", "master-same-org", "master-other-org", "general-same-org", "unregistered")
OWNERS = ("master", "general")
TICKETS = (None, "PAPER-42")


def expected(caller: str, acting: str, owner: str, ticket: str | None) -> tuple[int, str | None]:
    """The bank's rules, independently of the implementation."""
    if caller == "auditor":
        return 403, "forbidden"  # read-only role
    if caller == "operator":  # the help desk: anything, but a master user's only on paper (ticket)
        return (400, "ticket-required") if owner == "master" and not ticket else (200, None)
    # the front end acts for a master user of the same organisation, on general users only
    if acting == "master-same-org" and owner == "general":
        return 200, None
    return 403, "not-permitted"


@pytest.fixture
def people(api):
    api.org("acme")
    api.org("other")
    api.user("boss", "acme", role="master")
    api.user("clerk", "acme", role="general")
    api.user("outsider", "other", role="master")
    return {"master-same-org": "boss", "general-same-org": "clerk", "master-other-org": "outsider", "unregistered": "ghost"}


@pytest.mark.parametrize(("caller", "acting", "owner", "ticket"), list(itertools.product(CALLERS, ACTING, OWNERS, TICKETS)))
def test_revocation_permission(api, people, caller, acting, owner, ticket):
    owner_id = f"owner-{owner}"
    api.user(owner_id, "acme", role=owner)
    serial = api.issue(owner_id, make_csr()[1]).json["serial"]
    body = {"reason": "key_compromise"}
    if acting != "none":
        body["acting_login_id"] = people[acting]
    if ticket:
        body["ticket"] = ticket
    r = api.post(f"/v1/certificates/{serial}/revocation", role=caller, json=body)
    status, code = expected(caller, acting, owner, ticket)
    assert (r.status, r.code if r.status >= 400 else None) == (status, code), r
    state = api.get(f"/v1/certificates/{serial}", role="auditor").json
    assert state["status"] == ("revoked" if status == 200 else "active")
    if status == 200:
        assert state["revocation_reason"] == "key_compromise"
