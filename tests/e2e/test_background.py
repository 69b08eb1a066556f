"""The background half with real processes: rq workers, the scheduler, Redis, an SMTP server.
CRLs after revocations (checked with openssl), racing publications, a Redis outage, a worker
killed mid-publication, and the 40-day notices by email exactly once."""

from __future__ import annotations

import os
import signal
import threading
import time

import pytest
from cryptography import x509
from sqlalchemy import insert, select

from ca_service.services.authority.hierarchy import active_ca
from ca_service.services.crl import publication as crl_publication
from ca_service.store.models import Certificate, Crl, Notice
from tests.support.background import PrivateRedis, SmtpServer, wait_for
from tests.support.cli import run_cli
from tests.support.pki import make_csr, openssl


def _crl_serials(api, name="issuing") -> set[str]:
    r = api.get(f"/crl/{name}.crl", role=None)
    if r.status != 200:
        return set()
    return {format(e.serial_number, "x") for e in x509.load_der_x509_crl(r.content)}


def _revoke(api, serial, **body):
    return api.post(f"/v1/certificates/{serial}/revocation", role="operator", json={"reason": "key_compromise", **body})


@pytest.fixture
def worker(live_processes, test_env):
    proc = live_processes.start(f"worker-{time.monotonic_ns()}", ["worker"])
    yield proc
    proc.stop()


def test_revocation_reaches_the_crl_and_openssl_rejects_the_certificate(live, worker, tmp_path):
    live.org("acme")
    live.user("good", "acme")
    live.user("bad", "acme")
    good = live.issue("good", make_csr()[1]).json
    bad = live.issue("bad", make_csr()[1]).json
    assert _revoke(live, bad["serial"], reason="affiliation_changed").status == 200
    wait_for(lambda: bad["serial"] in _crl_serials(live), timeout=30)
    crl = x509.load_der_x509_crl(live.get("/crl/issuing.crl", role=None).content)
    entry = crl.get_revoked_certificate_by_serial_number(int(bad["serial"], 16))
    assert entry.extensions.get_extension_for_class(x509.CRLReason).value.reason == x509.ReasonFlags.affiliation_changed
    for name in ("issuing", "root"):
        (tmp_path / f"{name}.der").write_bytes(live.get(f"/crl/{name}.crl", role=None).content)
        openssl("crl", "-inform", "DER", "-in", f"{name}.der", "-out", f"{name}.crl", cwd=tmp_path, check=True)
    (tmp_path / "chain.pem").write_text(good["chain_pem"])
    for who in ("good", "bad"):
        (tmp_path / f"{who}.pem").write_text({"good": good, "bad": bad}[who]["certificate_pem"])
    args = ["verify", "-crl_check_all", "-CRLfile", "issuing.crl", "-CRLfile", "root.crl", "-CAfile", "chain.pem"]
    ok = openssl(*args, "good.pem", cwd=tmp_path)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    revoked = openssl(*args, "bad.pem", cwd=tmp_path)
    assert revoked.returncode != 0 and "certificate revoked" in revoked.stdout + revoked.stderr
    meta = live.get("/v1/crl").json
    assert meta["entries"] == 1 and meta["url"].endswith(".crl")
    published = live.post("/v1/crl/publications", role="operator")
    assert published.status == 202
    job = wait_for(
        lambda: (j := live.get(f"/v1/jobs/{published.json['job_id']}", role="operator").json)["status"] == "finished" and j
    )
    assert job["result"]["crl_number"] > meta["crl_number"]


def test_a_burst_of_revocations_coalesces_into_a_few_publications(live, worker, ctx):
    live.org("acme")
    serials = []
    for i in range(40):
        live.user(f"u{i}", "acme")
        serials.append(live.issue(f"u{i}", make_csr()[1]).json["serial"])
    for serial in serials:
        assert _revoke(live, serial).status == 200
    wait_for(lambda: set(serials) <= _crl_serials(live), timeout=30)
    with ctx.sessions() as s:
        publications = len(s.scalars(select(Crl.id).where(Crl.entries > 0)).all())
    assert publications <= 10, publications  # 40 revocations, a handful of CRLs


def test_racing_publications_get_distinct_increasing_numbers(ctx):
    results, errors = [], []

    def publish():
        try:
            results.append(crl_publication.publish(ctx, force=True)[0].crl_number)
        except Exception as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=publish) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and len(set(results)) == 4
    with ctx.sessions() as s:
        issuing = active_ca(s, "issuing")
        numbers = s.scalars(select(Crl.crl_number).where(Crl.issuer_id == issuing.id).order_by(Crl.id)).all()
    assert numbers == sorted(numbers) and len(set(numbers)) == len(numbers)


def test_redis_outage_loses_no_revocation(live_processes, test_env, tmp_path):
    redis = PrivateRedis(tmp_path)
    redis.start()
    base = live_processes.start_api(workers=2, name="api-outage", REDIS_URL=redis.url)
    live_processes.start("worker-outage", ["worker"], REDIS_URL=redis.url)
    live_processes.start("scheduler-outage", ["scheduler"], REDIS_URL=redis.url)
    api = type(live_processes.api())(live_processes.tokens, base_url=base)
    api.org("acme")
    serials = []
    for i in range(3):
        api.user(f"o{i}", "acme")
        serials.append(api.issue(f"o{i}", make_csr()[1]).json["serial"])
    redis.stop()
    for serial in serials:  # the API keeps revoking with Redis down
        assert _revoke(api, serial).status == 200
    ready = api.get("/readyz", role=None)
    assert ready.status == 200 and ready.json["checks"]["redis"] == "down"
    redis.start()  # same port; no manual step after this
    wait_for(lambda: set(serials) <= _crl_serials(api), timeout=45)
    for name in ("api-outage", "worker-outage", "scheduler-outage"):
        live_processes.processes[name].stop()
    redis.stop()


def test_worker_killed_mid_publication_leaves_the_previous_crl(ctx, live_processes, test_env):
    with ctx.engine.begin() as conn:  # enough revoked rows to make a publication take a while
        issuer_id = conn.execute(
            select(Certificate.__table__.metadata.tables["certificate_authorities"].c.id).where(
                Certificate.__table__.metadata.tables["certificate_authorities"].c.kind == "issuing"
            )
        ).scalar()
        conn.execute(
            insert(Certificate.__table__.metadata.tables["organizations"]).values(
                org_id="bulk", name="Bulk", login_method="certificate", created_at=ctx.clock.now(), updated_at=ctx.clock.now()
            )
        )
        now = ctx.clock.now()
        conn.execute(
            insert(Certificate.__table__.metadata.tables["users"]),
            [
                {"login_id": f"b{i}", "org_id": "bulk", "role": "general", "created_at": now, "updated_at": now}
                for i in range(60000)
            ],
        )
        conn.execute(insert(Certificate.__table__), [
            {"serial": format(0x10000000 + i, "x"), "issuer_id": issuer_id, "login_id": f"b{i}", "org_id": "bulk",
             "spki_sha256": f"{i:064x}", "fingerprint_sha256": "0" * 64, "key_description": "EC P-256", "issued_at": now,
             "not_before": now, "not_after": now.replace(year=now.year + 1), "der": b"\x30\x00", "revoked_at": now,
             "revocation_reason": "superseded"} for i in range(60000)])  # fmt: skip
    first = crl_publication.publish(ctx, force=True)[0]
    before = (ctx.settings.public_dir / "issuing.crl").read_bytes()
    from redis import Redis
    from rq import Queue

    job = Queue("crl", connection=Redis.from_url(test_env.redis_url)).enqueue(
        "workers.jobs.publish_crl_job", kwargs={"force": True}
    )
    proc = live_processes.start(f"worker-kill-{time.monotonic_ns()}", ["worker"])
    wait_for(lambda: job.get_status(refresh=True) == "started", timeout=30, interval=0.02)
    os.killpg(proc.proc.pid, signal.SIGKILL)  # the worker and its work horse, mid-publication
    proc.proc.wait(10)
    on_disk = (ctx.settings.public_dir / "issuing.crl").read_bytes()
    parsed = x509.load_der_x509_crl(on_disk)  # never a torn file: the previous CRL, or a complete newer one
    issuing_cert = x509.load_der_x509_certificate(live_processes.api().get("/ca/issuing.crt", role=None).content)
    assert parsed.is_signature_valid(issuing_cert.public_key())
    number_on_disk = parsed.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number
    assert number_on_disk == first.crl_number or (number_on_disk == first.crl_number + 1 and len(parsed) == 60000)
    assert on_disk == before or number_on_disk == first.crl_number + 1
    # the next run succeeds (the killed transaction rolled back, or committed just before the kill)
    again = crl_publication.publish(ctx, force=True)[0]
    assert again.crl_number > number_on_disk and again.entries == 60000
    assert (
        x509.load_der_x509_crl((ctx.settings.public_dir / "issuing.crl").read_bytes())
        .extensions.get_extension_for_class(x509.CRLNumber)
        .value.crl_number
        == again.crl_number
    )


def test_expiry_notice_email_once_with_retry_after_smtp_outage(api, ctx, clock, live_processes, test_env, tmp_path):
    smtp = SmtpServer()
    smtp.start()
    # a Redis of its own: RQ's retry scheduler lock of a worker killed by another test cannot delay this one
    redis = PrivateRedis(tmp_path)
    redis.start()
    env = {"CA_SMTP_PORT": str(smtp.port), "CA_MAIL_RETRY_INTERVALS": "1,1,2,2,3", "REDIS_URL": redis.url}
    proc = live_processes.start(f"worker-mail-{time.monotonic_ns()}", ["worker"], **env)
    api.org("acme")
    api.user("alice", "acme", email="alice@example.com")
    api.put("/v1/users/noemail", role="operator", json={"org_id": "acme", "role": "general"})
    alice = api.issue("alice", make_csr()[1]).json
    api.issue("noemail", make_csr()[1])
    clock.travel(days=330)
    out = run_cli("notices", "scan", env=test_env.env(**env))
    assert "2 notices created, 1 emails queued" in out.stdout
    message = wait_for(lambda: smtp.messages and smtp.messages[0], timeout=30)
    body = message.get_body(("plain",)).get_content()
    assert message["To"] == "alice@example.com" and "電子証明書" in message["Subject"]
    assert "ログイン後の画面から電子証明書を更新してください" in body and "renew it from the screen after login" in body
    assert f"{alice['not_after'][:4]}年" in body
    assert "2 notices created" not in run_cli("notices", "scan", env=test_env.env()).stdout  # rerun: nothing new
    wait_for(lambda: _email_state(ctx, "alice") == ("sent", 1), timeout=15)
    time.sleep(2)  # a duplicate email, if the rerun queued one, would arrive in this time
    assert len(smtp.messages) == 1
    with ctx.sessions() as s:
        statuses = {n.login_id: (n.email_status, n.email_attempts) for n in s.scalars(select(Notice))}
    assert statuses == {"alice": ("sent", 1), "noemail": ("no_email", 0)}
    screen = api.get("/v1/users/noemail/notices").json["items"]
    assert len(screen) == 1 and screen[0]["days_remaining"] <= 40

    # SMTP down: the next notice's email fails, is retried with backoff, and arrives once SMTP is back
    smtp.stop()
    api.user("bob", "acme", email="bob@example.com")
    clock.reset()
    api.issue("bob", make_csr()[1])
    clock.travel(days=330)
    run_cli("notices", "scan", env=test_env.env(**env))  # the retry schedule is fixed when the job is enqueued
    wait_for(lambda: _email_state(ctx, "bob")[1] >= 1, timeout=30)
    time.sleep(1.5)
    smtp.start()
    wait_for(lambda: any(m["To"] == "bob@example.com" for m in smtp.messages), timeout=45)
    # the job records `sent` after the SMTP server has accepted the message: wait for the record
    wait_for(lambda: _email_state(ctx, "bob")[0] == "sent", timeout=15)
    with ctx.sessions() as s:
        bob = s.scalars(select(Notice).where(Notice.login_id == "bob")).one()
    assert bob.email_status == "sent" and bob.email_attempts >= 2 and bob.email_last_error is None
    proc.stop()
    smtp.stop()
    redis.stop()


def _email_state(ctx, login_id: str) -> tuple[str | None, int]:
    """(email_status, email_attempts) of the login ID's notice."""
    with ctx.sessions() as s:
        notice = s.scalars(select(Notice).where(Notice.login_id == login_id)).first()
        return (notice.email_status, notice.email_attempts) if notice else (None, 0)


def test_notices_disappear_after_renewal_and_revocation(api, clock, test_env):
    api.org("acme")
    api.user("boss", "acme", role="master")
    serials = {}
    for login in ("renewer", "revoked"):
        api.user(login, "acme")
        serials[login] = api.issue(login, make_csr()[1]).json["serial"]
    clock.travel(days=335)
    run_cli("notices", "scan", env=test_env.env())
    assert all(len(api.get(f"/v1/users/{u}/notices").json["items"]) == 1 for u in serials)
    assert api.post(f"/v1/certificates/{serials['renewer']}/renewal", json={"csr": make_csr()[1]}).status == 201
    r = api.post(f"/v1/certificates/{serials['revoked']}/revocation", json={"reason": "unspecified", "acting_login_id": "boss"})
    assert r.status == 200
    assert all(api.get(f"/v1/users/{u}/notices").json["items"] == [] for u in serials)
