"""Registry reads, certificate status against the clock, filters and cursor pagination."""

from __future__ import annotations

from tests.support.pki import make_csr


def test_organization_create_rename_and_read(api):
    r = api.put("/v1/organizations/acme", role="operator", json={"name": "Acme", "login_method": "certificate"})
    assert r.status == 201 and r.json["login_method"] == "certificate"
    r = api.put("/v1/organizations/acme", role="operator", json={"name": "Acme Holdings"})
    assert r.status == 200 and r.json["name"] == "Acme Holdings" and r.json["login_method"] == "certificate"
    got = api.get("/v1/organizations/acme", role="frontend").json
    assert set(got) == {"org_id", "name", "login_method", "created_at", "updated_at"} and got["created_at"].endswith("Z")
    r = api.put("/v1/organizations/acme", role="operator", json={"name": "Acme", "login_method": "id_password"})
    assert r.status == 409 and r.code == "login-method-change-requires-ticket"
    assert api.put("/v1/organizations/beta", role="operator", json={"name": "Beta"}).json["login_method"] == "id_password"


def test_user_shows_login_method_and_current_certificate(api):
    api.org("acme")
    body = {"org_id": "acme", "role": "master", "email": "a@example.com", "ticket": "PAPER-1"}
    r = api.put("/v1/users/alice", role="operator", json=body)
    assert r.status == 201 and r.json["current_certificate"] is None and r.json["login_method"] == "certificate"
    issued = api.issue("alice", make_csr()[1]).json
    user = api.get("/v1/users/alice").json
    assert user["current_certificate"]["serial"] == issued["serial"] and user["role"] == "master"


def test_status_is_computed_against_the_clock(api, clock):
    api.org("acme")
    api.user("alice", "acme")
    serial = api.issue("alice", make_csr()[1]).json["serial"]
    assert api.get(f"/v1/certificates/{serial}", role="auditor").json["status"] == "active"
    clock.travel(days=366)
    got = api.get(f"/v1/certificates/{serial}", role="auditor").json
    assert got["status"] == "expired" and got["days_remaining"] is None  # meaningful only while active
    assert api.get("/v1/users/alice").json["current_certificate"] is None
    # an expired certificate does not block a new issuance (R8)
    again = api.issue("alice", make_csr()[1])
    assert again.status == 201 and again.json["serial"] != serial


def test_serial_lookup_is_case_and_colon_insensitive(api):
    api.org("acme")
    api.user("alice", "acme")
    serial = api.issue("alice", make_csr()[1]).json["serial"]
    colons = ":".join(serial.upper()[i : i + 2] for i in range(0, len(serial), 2))
    assert api.get(f"/v1/certificates/{serial.upper()}").json["serial"] == serial
    assert api.get(f"/v1/certificates/{colons}").json["serial"] == serial


def test_list_filters_and_cursor_pagination(api, clock):
    api.org("acme")
    api.org("beta")
    serials = {}
    for i in range(5):
        api.user(f"a{i}", "acme")
        serials[f"a{i}"] = api.issue(f"a{i}", make_csr()[1]).json["serial"]
    api.user("b0", "beta")
    serials["b0"] = api.issue("b0", make_csr()[1]).json["serial"]

    seen, cursor = [], None
    while True:
        params = {"org_id": "acme", "limit": 2, **({"cursor": cursor} if cursor else {})}
        page = api.get("/v1/certificates", role="auditor", params=params).json
        assert len(page["items"]) <= 2
        seen += [c["serial"] for c in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [serials[f"a{i}"] for i in range(5)]

    only = api.get("/v1/certificates", params={"login_id": "b0"}).json["items"]
    assert [c["serial"] for c in only] == [serials["b0"]]
    assert len(api.get("/v1/certificates", params={"status": "active"}).json["items"]) == 6
    assert api.get("/v1/certificates", params={"status": "expired"}).json["items"] == []
    assert api.get("/v1/certificates", params={"expiring_before": "2000-01-01T00:00:00Z"}).json["items"] == []
    clock.travel(days=400)
    assert len(api.get("/v1/certificates", params={"status": "expired"}).json["items"]) == 6
