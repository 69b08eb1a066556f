"""The help desk's operator CLI against the real database (PostgreSQL in CI) and Redis: each
command's output (tables and --json) and the audit events its changes write."""

from __future__ import annotations

import gc
import getpass
import json
from typing import Any

import pytest
from click.testing import CliRunner, Result
from cryptography import x509
from redis import Redis
from rq import Queue
from sqlalchemy import select

from ca_service.cli import operator
from ca_service.cli.main import cli
from ca_service.store.models import AuditEvent, OutboxEntry
from tests.support.cli import run_cli
from tests.support.pki import make_csr
from tests.support.workers import QUEUES, empty_queues, run_worker_burst

ACTOR = f"cli:{getpass.getuser()}"


def ca(*args: str, code: int = 0) -> Result:
    """`ca-service ARGS` in this process (the settings come from the test environment)."""
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    gc.collect()  # each command builds its own engine: close its pooled connections now
    assert result.exit_code == code, (result.exit_code, result.output)
    return result


def as_json(*args: str) -> Any:
    return json.loads(ca(*args, "--json").stdout)


def events(ctx, action: str) -> list[AuditEvent]:
    with ctx.sessions() as s:
        return list(s.scalars(select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)))


def setup_org(api, org_id: str = "acme", users: tuple[str, ...] = ("alice",)) -> dict[str, str]:
    """An organisation on the certificate method with a master user and general users, each
    holding a certificate. Returns login ID -> serial."""
    api.org(org_id)
    api.user(f"{org_id}-boss", org_id, role="master")
    serials = {}
    for login in (f"{org_id}-boss", *users):
        if login != f"{org_id}-boss":
            api.user(login, org_id)
        r = api.issue(login, make_csr()[1])
        assert r.status == 201, r
        serials[login] = r.json["serial"]
    return serials


def test_orgs_show_and_switch_method_revokes_and_audits(api, ctx, test_env):
    serials = setup_org(api, users=("alice", "bob"))
    shown = ca("orgs", "show", "acme").stdout
    assert "login_method  certificate" in shown and "org_id        acme" in shown
    org = json.loads(run_cli("orgs", "show", "acme", "--json", env=test_env.env()).stdout)  # the real entry point
    assert org["org_id"] == "acme" and org["login_method"] == "certificate" and org["created_at"].endswith("Z")

    ca("orgs", "switch-method", "acme", "--to", "id_password", code=2)  # no ticket: usage error
    assert "ticket" in ca("orgs", "switch-method", "acme", "--to", "id_password", "--ticket", "  ", code=2).output
    assert "[organization-not-found]" in ca("orgs", "show", "nope", code=1).output

    out = ca("orgs", "switch-method", "acme", "--to", "id_password", "--ticket", "HD-2026-0042").stdout
    assert "login method certificate -> id_password (ticket HD-2026-0042)" in out
    assert "revoked 3 certificates (cessation_of_operation)" in out
    assert all(serial in out for serial in serials.values())
    switched = events(ctx, "organization.login_method_switched")
    assert len(switched) == 1 and switched[0].client_name == ACTOR and switched[0].target_id == "acme"
    details = json.loads(switched[0].details)
    assert details == {"previous": "certificate", "login_method": "id_password", "ticket": "HD-2026-0042", "revoked": 3}
    revoked = events(ctx, "certificate.revoked")
    assert {e.target_id for e in revoked} == set(serials.values())
    assert {json.loads(e.details)["reason"] for e in revoked} == {"cessation_of_operation"}
    assert as_json("orgs", "show", "acme")["login_method"] == "id_password"

    again = as_json("orgs", "switch-method", "acme", "--to", "id_password", "--ticket", "HD-2026-0043")
    assert again["previous_login_method"] == "id_password" and again["revoked"] == []
    back = as_json("orgs", "switch-method", "acme", "--to", "certificate", "--ticket", "HD-2026-0044")
    assert (back["previous_login_method"], back["login_method"], back["revoked"]) == ("id_password", "certificate", [])
    assert [json.loads(e.details)["ticket"] for e in events(ctx, "organization.login_method_switched")] == [
        "HD-2026-0042",
        "HD-2026-0044",
    ]


def test_users_show(api, ctx):
    serials = setup_org(api)
    api.user("carol", "acme")
    out = ca("users", "show", "alice").stdout
    assert "org_id               acme" in out and "role                 general" in out
    assert f"current_certificate  {serials['alice']} (until " in out
    data = as_json("users", "show", "alice")
    assert data["login_method"] == "certificate" and data["current_certificate"]["serial"] == serials["alice"]
    assert data["current_certificate"]["status"] == "active" and "certificate_pem" not in data["current_certificate"]
    assert as_json("users", "show", "carol")["current_certificate"] is None
    assert "current_certificate  -" in ca("users", "show", "carol").stdout
    assert "[user-not-found]" in ca("users", "show", "nobody", code=1).output


def test_certs_list_filters_and_pages(api, ctx, clock, monkeypatch):
    acme = setup_org(api, users=("alice", "bob"))
    globex = setup_org(api, "globex", users=("gina",))
    api.post(f"/v1/certificates/{acme['bob']}/revocation", role="operator", json={"reason": "key_compromise"})
    monkeypatch.setattr(operator, "PAGE", 2)  # several pages: the command follows the cursor

    every = as_json("certs", "list")
    assert [c["serial"] for c in every] == [*acme.values(), *globex.values()]
    assert all("certificate_pem" not in c for c in every)
    assert {c["serial"] for c in as_json("certs", "list", "--org", "globex")} == set(globex.values())
    assert [c["serial"] for c in as_json("certs", "list", "--status", "revoked")] == [acme["bob"]]
    assert [c["serial"] for c in as_json("certs", "list", "--login", "alice")] == [acme["alice"]]
    assert as_json("certs", "list", "--expiring-within", "30") == []
    within = as_json("certs", "list", "--expiring-within", "366", "--org", "acme")  # active ones only
    assert {c["serial"] for c in within} == {acme["acme-boss"], acme["alice"]}

    clock.travel(days=340)  # now inside the 40-day window
    soon = as_json("certs", "list", "--expiring-within", "40")
    assert len(soon) == 4 and all(c["days_remaining"] <= 40 for c in soon)

    table = ca("certs", "list", "--org", "acme")
    lines = table.stdout.splitlines()
    assert lines[0].split() == ["SERIAL", "LOGIN_ID", "ORG_ID", "STATUS", "NOT_AFTER", "DAYS_REMAINING", "REVOCATION_REASON"]
    assert len(lines) == 4 and any(acme["bob"] in line and "revoked" in line and "key_compromise" in line for line in lines)
    assert "3 certificates" in table.stderr


def test_certs_show(api, ctx):
    serials = setup_org(api)
    serial = serials["alice"]
    out = ca("certs", "show", serial.upper()).stdout  # serials are accepted in any case
    assert f"serial              {serial}" in out and "status              active" in out
    data = as_json("certs", "show", serial)
    assert data["login_id"] == "alice" and data["revoked_at"] is None and data["not_after"].endswith("Z")
    cert = x509.load_pem_x509_certificate(ca("certs", "show", serial, "--pem").stdout.encode())
    assert format(cert.serial_number, "x") == serial == data["serial"]
    assert "[certificate-not-found]" in ca("certs", "show", "abc123", code=1).output


def test_revoke_as_the_help_desk(api, ctx):
    serials = setup_org(api)
    boss = serials["acme-boss"]
    assert "[ticket-required]" in ca("revoke", boss, "--reason", "key_compromise", code=1).output  # a master's: R9
    assert "Invalid value for '--reason'" in ca("revoke", boss, "--reason", "stolen", "--ticket", "T-1", code=2).output

    out = ca("revoke", boss, "--reason", "key_compromise", "--ticket", "HD-7").stdout
    assert f"revoked {boss} of acme-boss (acme) as key_compromise" in out and "(ticket HD-7)" in out
    (event,) = events(ctx, "certificate.revoked")
    assert (event.target_id, event.client_name, event.request_id) == (boss, ACTOR, "cli-ticket-HD-7")
    assert json.loads(event.details) == {"login_id": "acme-boss", "org_id": "acme", "reason": "key_compromise", "ticket": "HD-7"}
    with ctx.sessions() as s:  # the CRL publication is requested in the same transaction
        kinds = [e.kind for e in s.scalars(select(OutboxEntry))]
    assert kinds == ["crl.publish"]
    assert as_json("certs", "show", boss)["status"] == "revoked"

    assert "[already-revoked]" in ca("revoke", boss, "--reason", "cessation_of_operation", "--ticket", "HD-8", code=1).output
    long_ticket = "HD-" + "9" * 97  # the API's limit, 100 characters: stored whole in the audit event
    data = as_json("revoke", serials["alice"], "--reason", "affiliation_changed", "--ticket", long_ticket)
    assert data["status"] == "revoked" and data["revocation_reason"] == "affiliation_changed"
    assert json.loads(events(ctx, "certificate.revoked")[-1].details)["ticket"] == long_ticket
    assert "[certificate-not-found]" in ca("revoke", "ffff", "--reason", "unspecified", "--ticket", "T", code=1).output


@pytest.fixture
def redis_queues(test_env):
    conn = Redis.from_url(test_env.redis_url)

    def clear() -> None:
        empty_queues(test_env.redis_url)
        for name in QUEUES:
            registry = Queue(name, connection=conn).failed_job_registry
            for job_id in registry.get_job_ids():
                registry.remove(job_id, delete_job=True)

    clear()
    yield conn
    clear()
    conn.close()


def test_jobs_failed_lists_and_requeues_with_audit(ctx, test_env, redis_queues):
    queue = Queue("default", connection=redis_queues)
    jobs = [queue.enqueue("workers.jobs.expiry_scan_job", kwargs={"as_of": f"not-a-date-{i}"}) for i in range(3)]
    jobs[0].meta["request_id"] = "req-from-api"
    jobs[0].save_meta()
    assert as_json("jobs", "failed") == []
    run_worker_burst(test_env)  # a real worker: the three jobs fail (an as_of from the queue is refused)

    listed = as_json("jobs", "failed")
    assert sorted(j["job_id"] for j in listed) == sorted(j.id for j in jobs)
    first = next(j for j in listed if j["job_id"] == jobs[0].id)
    assert first["queue"] == "default" and first["function"] == "workers.jobs.expiry_scan_job"
    assert "ForeignJobRefused" in first["error"] and first["request_id"] == "req-from-api" and first["ended_at"].endswith("Z")
    assert as_json("jobs", "failed", "--queue", "mail") == []
    table = ca("jobs", "failed")
    assert table.stdout.splitlines()[0].split() == ["JOB_ID", "QUEUE", "FUNCTION", "ENDED_AT", "ERROR"]
    assert "3 jobs failed" in table.stderr
    assert "--job only goes with --requeue" in ca("jobs", "failed", "--job", jobs[0].id, code=2).output
    assert "[job-not-found]" in ca("jobs", "failed", "--requeue", "--job", "no-such-job", code=1).output
    assert events(ctx, "job.requeued") == []

    one = as_json("jobs", "failed", "--requeue", "--job", jobs[1].id)
    assert [j["job_id"] for j in one] == [jobs[1].id] and queue.count == 1
    out = ca("jobs", "failed", "--requeue")
    assert "2 jobs requeued" in out.stderr and queue.count == 3
    assert as_json("jobs", "failed") == []
    requeued = events(ctx, "job.requeued")
    assert requeued[0].target_id == jobs[1].id
    assert {e.target_id for e in requeued} == {j.id for j in jobs} and len(requeued) == 3
    assert all(e.client_name == ACTOR for e in requeued)
    assert json.loads(requeued[0].details)["queue"] == "default"
