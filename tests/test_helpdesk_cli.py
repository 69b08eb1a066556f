"""Issue 17 item 6: the help desk's look-ups (`search`, `users search`, `certs show` with who
revoked and the ticket, `audit list` with filters, `notices list` with an optional --failed),
against the real database (PostgreSQL in CI), and the indexes the search relies on."""

from __future__ import annotations

import json
from datetime import timedelta

from sqlalchemy import event, insert, text
from sqlalchemy.orm import Session

from ca_service.store import helpdesk_search
from ca_service.store.models import Notice
from tests.support.workers import insert_certificates
from tests.test_operations_cli import ACTOR, as_json, ca, setup_org


def _user(api, login_id: str, org_id: str, *, display_name: str | None = None, role: str = "general") -> None:
    body = {"org_id": org_id, "role": role, "email": f"{login_id}@example.com", "display_name": display_name}
    r = api.put(f"/v1/users/{login_id}", role="operator", json=body)
    assert r.status in (200, 201), r


def test_search_finds_users_by_login_org_email_and_name_and_is_bounded(api, ctx):
    api.org("acme", name="Acme Trading")
    api.org("acorn", name="Acorn Foods")
    _user(api, "alice", "acme", display_name="Wonderland Alice")
    _user(api, "alfred", "acorn", display_name="Alfred Butler")
    _user(api, "zed", "acme")
    insert_certificates(ctx, "bulk", [{"login_id": f"bulk-{i:02d}", "not_after": ctx.clock.now() + timedelta(days=99)}
                                      for i in range(30)])  # fmt: skip

    def users(*args: str) -> list[tuple[str, str]]:
        return [(u["login_id"], u["matched_on"]) for u in as_json("users", "search", *args)]

    assert users("al") == [("alfred", "login_id"), ("alice", "login_id")]  # login ID prefix, in order
    assert users("ali") == [("alice", "login_id")]
    assert users("acme") == [("alice", "org"), ("zed", "org")]  # organisation ID prefix: its users
    assert users("acme tr") == [("alice", "org"), ("zed", "org")]  # organisation name, any case
    assert users("zed@exa") == [("zed", "email")]
    assert users("Wonderland") == [("alice", "display_name")]
    assert users("c_rn") == [] and users("%") == []  # LIKE wildcards are literal characters
    assert users("nobody") == []
    assert len(users("bulk")) == 20  # bounded: --limit defaults to 20
    assert users("bulk", "--limit", "3") == [("bulk-00", "login_id"), ("bulk-01", "login_id"), ("bulk-02", "login_id")]
    assert "Invalid value for '--limit'" in ca("users", "search", "bulk", "--limit", "0", code=2).output

    table = ca("users", "search", "acme")
    assert table.stdout.splitlines()[0].split() == ["LOGIN_ID", "ORG_ID", "ORG_NAME", "ROLE", "EMAIL", "DISPLAY_NAME",
                                                    "MATCHED_ON"]  # fmt: skip
    assert "2 users" in table.stderr

    found = as_json("search", "ac")
    assert [(o["org_id"], o["matched_on"]) for o in found["organizations"]] == [("acme", "org_id"), ("acorn", "org_id")]
    assert {o["org_id"] for o in as_json("search", "foods")["organizations"]} == {"acorn"}


def test_search_finds_a_certificate_by_serial_prefix_in_any_spelling(api, ctx):
    serials = setup_org(api)
    serial = serials["alice"]
    colons = ":".join(serial[i : i + 2] for i in range(0, 12, 2)).upper()  # as openssl prints it
    for query in (serial, serial[:10], serial[:10].upper(), colons, "00" + serial[:8]):
        certs = as_json("search", query)["certificates"]
        assert [c["serial"] for c in certs] == [serial], query
        assert certs[0]["login_id"] == "alice" and certs[0]["not_after"].endswith("Z")
    assert as_json("search", "not-hex")["certificates"] == []
    out = ca("search", serial[:10]).stdout
    assert "certificates (1):" in out and serial in out


def test_the_search_uses_indexes_for_login_ids_and_serials(api, ctx):
    """No full read of `certificates` ever, and the login-ID prefix walks the users primary key
    (the planner is told to avoid sequential scans, so a plan that still has one has no index)."""
    setup_org(api)
    statements: list[tuple[str, object]] = []

    def capture(_conn, _cursor, statement, parameters, _context, _many):
        statements.append((statement, parameters))

    with ctx.engine.connect() as conn:
        event.listen(conn, "before_cursor_execute", capture)
        with Session(bind=conn) as session:
            helpdesk_search.search(session, "alice", 10)
            helpdesk_search.search(session, "abcdef12", 10)
        event.remove(conn, "before_cursor_execute", capture)
        if ctx.is_postgres:
            conn.execute(text("SET enable_seqscan = off"))
        explain = "EXPLAIN " if ctx.is_postgres else "EXPLAIN QUERY PLAN "
        checked = 0
        for statement, parameters in statements:
            plan = "\n".join(" ".join(str(c) for c in row) for row in conn.exec_driver_sql(explain + statement, parameters))
            full_scan = "Seq Scan on {}" if ctx.is_postgres else "SCAN {}"
            if "FROM certificates" in statement:
                assert full_scan.format("certificates") not in plan, (statement, plan)
                checked += 1
            if "users.login_id >=" in statement:
                assert full_scan.format("users") not in plan, (statement, plan)
                checked += 1
        conn.rollback()
    assert checked >= 3  # the login-ID query twice (two searches), the serial query once


def test_certs_show_says_who_revoked_and_on_which_ticket(api, ctx):
    serials = setup_org(api)
    boss, alice = serials["acme-boss"], serials["alice"]
    assert as_json("certs", "show", alice)["revocation_ticket"] is None
    r = api.post(f"/v1/certificates/{alice}/revocation", json={"reason": "key_compromise", "acting_login_id": "acme-boss"})
    assert r.status == 200, r
    ca("revoke", boss, "--reason", "affiliation_changed", "--ticket", "HD-2026-77")

    by_master = as_json("certs", "show", alice)
    assert (by_master["status"], by_master["revoked_by_client"], by_master["revoked_by_user"]) == (
        "revoked", "test-frontend", "acme-boss")  # fmt: skip
    assert by_master["revocation_ticket"] is None and "BEGIN CERTIFICATE" in by_master["certificate_pem"]
    by_help_desk = as_json("certs", "show", boss)
    assert (by_help_desk["revoked_by_client"], by_help_desk["revoked_by_user"], by_help_desk["revocation_ticket"]) == (
        ACTOR, None, "HD-2026-77")  # fmt: skip
    out = ca("certs", "show", boss).stdout
    assert f"revoked_by_client   {ACTOR}" in out and "revocation_ticket   HD-2026-77" in out
    assert "revocation_reason   affiliation_changed" in out and f"serial              {boss}" in out


def test_audit_list_filters(api, ctx):
    serials = setup_org(api)
    alice = serials["alice"]
    r = api.post(f"/v1/certificates/{alice}/revocation", json={"reason": "key_compromise", "acting_login_id": "acme-boss"})
    assert r.status == 200, r
    ca("revoke", serials["acme-boss"], "--reason", "unspecified", "--ticket", "HD-1")

    on_alice = as_json("audit", "list", "--target", alice)
    assert [e["action"] for e in on_alice] == ["certificate.revoked", "certificate.issued"]  # newest first
    assert all(e["target_id"] == alice for e in on_alice)
    revoked = as_json("audit", "list", "--action", "certificate.revoked")
    assert {e["target_id"] for e in revoked} == set(serials.values())
    prefixed = as_json("audit", "list", "--action", "certificate.")
    assert {e["action"] for e in prefixed} == {"certificate.issued", "certificate.revoked"} and len(prefixed) == 4
    assert [e["target_id"] for e in as_json("audit", "list", "--actor", ACTOR)] == [serials["acme-boss"]]
    assert [e["target_id"] for e in as_json("audit", "list", "--actor", "acme-boss")] == [alice]  # acting login ID
    assert len(as_json("audit", "list", "--action", "certificate.", "--limit", "1")) == 1
    now = ctx.clock.now()
    later = (now + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")  # UTC says so (no zone: CA_TIMEZONE)
    earlier = (now - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert as_json("audit", "list", "--since", later) == []
    assert as_json("audit", "list", "--until", earlier) == []
    assert len(as_json("audit", "list", "--since", earlier, "--until", later, "--target", alice)) == 2
    table = ca("audit", "list", "--target", alice)
    assert "certificate.revoked" in table.stdout and '"reason": "key_compromise"' in table.stdout
    assert "2 events" in table.stderr


def test_notices_list_with_and_without_failed(api, ctx):
    now = ctx.clock.now()
    serials = insert_certificates(ctx, "acme", [{"login_id": login, "not_after": now + timedelta(days=30)}
                                                for login in ("ok-user", "bad-user")])  # fmt: skip
    with ctx.engine.begin() as conn:
        conn.execute(insert(Notice), [
            {"kind": "certificate_expiring", "serial": serials[0], "login_id": "ok-user", "not_after": now + timedelta(days=30),
             "created_at": now, "email_status": "sent", "email_attempts": 1, "email_last_error": None},
            {"kind": "certificate_expiring", "serial": serials[1], "login_id": "bad-user", "not_after": now + timedelta(days=30),
             "created_at": now, "email_status": "failed", "email_attempts": 5, "email_last_error": "relay refused"},
        ])  # fmt: skip
    everything = as_json("notices", "list")  # --failed is optional now
    assert [(n["login_id"], n["email_status"]) for n in everything] == [("bad-user", "failed"), ("ok-user", "sent")]
    failed = as_json("notices", "list", "--failed")
    assert [(n["login_id"], n["attempts"], n["last_error"]) for n in failed] == [("bad-user", 5, "relay refused")]
    assert [n["login_id"] for n in as_json("notices", "list", "--login", "ok-user")] == ["ok-user"]
    table = ca("notices", "list").stdout.splitlines()
    assert table[0].split() == ["ID", "KIND", "LOGIN_ID", "SERIAL", "EMAIL_STATUS", "ATTEMPTS", "LAST_ERROR"] and len(table) == 3
    assert json.loads(ca("notices", "list", "--failed", "--json").stdout)[0]["serial"] == serials[1]
