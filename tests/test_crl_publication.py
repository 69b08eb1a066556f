"""CRL publication (DESIGN §3, issue 4): contents built from the database, numbering and
coalescing, the files and HTTP endpoints, the outbox relay's one-waiting-job rule, the operator
trigger and job status through a real `ca-service worker --burst`."""

from __future__ import annotations

import dataclasses
import secrets
from datetime import timedelta

import pytest
from cryptography import x509
from sqlalchemy import delete, insert, select, update

from ca_service.context import Actor, build_context
from ca_service.outbox import relay
from ca_service.services.authority import hierarchy as authorities
from ca_service.services.authority.hierarchy import active_ca
from ca_service.services.crl import publication as crl_publication
from ca_service.services.crl import root as root_crl
from ca_service.store.models import Certificate, CertificateAuthority, Crl, OutboxEntry
from tests.support.cli import run_cli
from tests.support.live import free_port
from tests.support.pki import make_csr
from tests.support.workers import empty_queues, queued_count, run_worker_burst

SYSTEM = Actor(client_name="tests", role="operator")


@pytest.fixture
def queues(test_env):
    empty_queues(test_env.redis_url)
    yield
    empty_queues(test_env.redis_url)


def _issue(api, login_id: str) -> str:
    api.user(login_id, "acme")
    r = api.issue(login_id, make_csr()[1])
    assert r.status == 201, r
    return r.json["serial"]


def _revoke(api, serial: str, reason: str = "key_compromise"):
    r = api.post(f"/v1/certificates/{serial}/revocation", role="operator", json={"reason": reason})
    assert r.status == 200, r
    return r


def _issuing_cert(ctx) -> x509.Certificate:
    with ctx.sessions() as s:
        return x509.load_der_x509_certificate(active_ca(s, "issuing").der)


def test_crl_lists_revoked_unexpired_certificates_with_their_reasons(api, ctx, clock, queues):
    api.org("acme")
    compromised, plain, valid = _issue(api, "a"), _issue(api, "b"), _issue(api, "c")
    _revoke(api, compromised, "key_compromise")
    _revoke(api, plain, "unspecified")
    issuing, root = crl_publication.publish(ctx, force=True)
    assert issuing.published and issuing.entries == 2 and root.entries == 0

    der = (ctx.settings.public_dir / "issuing.crl").read_bytes()
    crl = x509.load_der_x509_crl(der)
    issuer = _issuing_cert(ctx)
    assert crl.is_signature_valid(issuer.public_key()) and crl.issuer == issuer.subject
    assert crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number == issuing.crl_number
    aki = crl.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    assert aki.key_identifier == issuer.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
    assert crl.next_update_utc - crl.last_update_utc == timedelta(hours=ctx.settings.crl_validity_hours)
    entry = crl.get_revoked_certificate_by_serial_number(int(compromised, 16))
    assert entry.extensions.get_extension_for_class(x509.CRLReason).value.reason == x509.ReasonFlags.key_compromise
    unspecified = crl.get_revoked_certificate_by_serial_number(int(plain, 16))
    assert len(unspecified.extensions) == 0  # reasonCode omitted for `unspecified` (DESIGN §3)
    assert crl.get_revoked_certificate_by_serial_number(int(valid, 16)) is None
    with ctx.sessions() as session:  # revocation dates: the database's instants, in UTC, to the second
        for serial in (compromised, plain):
            revoked_at = session.scalar(select(Certificate.revoked_at).where(Certificate.serial == serial))
            listed = crl.get_revoked_certificate_by_serial_number(int(serial, 16)).revocation_date_utc
            assert listed == revoked_at.replace(microsecond=0), (serial, listed, revoked_at)
    # the same bytes under the CA's own name and the alias, and in the database; no temp files left
    public = ctx.settings.public_dir
    assert (public / f"{issuing.ca_name}.crl").read_bytes() == der
    assert sorted(p.name for p in public.iterdir() if p.name.startswith(".")) == []
    with ctx.sessions() as s:
        issuer_id = active_ca(s, "issuing").id  # the root's CRLs (signed at a ceremony) stay between tests
        assert s.scalars(select(Crl.der).where(Crl.issuer_id == issuer_id, Crl.crl_number == issuing.crl_number)).one() == der

    clock.travel(days=367)  # both revoked certificates have expired: they leave the CRL
    later = crl_publication.publish(ctx, force=True)[0]
    assert later.entries == 0 and later.crl_number == issuing.crl_number + 1
    assert len(x509.load_der_x509_crl((public / "issuing.crl").read_bytes())) == 0


def test_a_request_already_covered_publishes_nothing(api, ctx, clock, queues):
    api.org("acme")
    first = crl_publication.publish(ctx, force=True)[0]
    again = crl_publication.publish(ctx)[0]  # no revocation since: coalesced away
    assert not again.published and again.crl_number == first.crl_number
    _revoke(api, _issue(api, "a"))
    after = crl_publication.publish(ctx)[0]
    assert after.published and after.crl_number == first.crl_number + 1 and after.entries == 1
    clock.travel(hours=ctx.settings.crl_validity_hours + 1)  # past nextUpdate: published even so
    stale = crl_publication.publish(ctx)[0]
    assert stale.published and stale.crl_number == after.crl_number + 1


def test_root_crl_lists_a_revoked_issuing_ca(ctx, queues):
    with ctx.sessions() as s:
        root = active_ca(s, "root")
        issuing = active_ca(s, "issuing")
        root_id = root.id
        template = {c: getattr(issuing, c) for c in ("serial", "subject", "ski", "key_algorithm", "not_before", "der")}
    now = ctx.clock.now()
    retired_serial = "7a" * 10
    with ctx.engine.begin() as conn:  # a retired subordinate (its kind is removed by the test clean-up)
        conn.execute(
            insert(CertificateAuthority).values(
                {**template, "serial": retired_serial, "name": "retired-test", "kind": "retired", "parent_id": root_id,
                 "key_ref": "none", "not_after": now + timedelta(days=30), "active": False, "created_at": now,
                 "revoked_at": now, "revocation_reason": "key_compromise", "revocation_count": 0}
            )
        )  # fmt: skip
    before = crl_publication.publish(ctx, force=True)[1].crl_number  # the root's, as stored: never re-signed
    assert crl_publication.publish(ctx, force=True)[1].crl_number == before
    try:
        root_result = root_crl.sign_root_crl(ctx, SYSTEM)  # the ceremony (the root key is offline)
        crl = x509.load_der_x509_crl((ctx.settings.public_dir / "root.crl").read_bytes())
        with ctx.sessions() as s:
            root_cert = x509.load_der_x509_certificate(active_ca(s, "root").der)
        assert crl.is_signature_valid(root_cert.public_key()) and crl.issuer == root_cert.subject
        assert root_result.entries == 1 and len(crl) == 1
        entry = crl.get_revoked_certificate_by_serial_number(int(retired_serial, 16))
        assert entry.extensions.get_extension_for_class(x509.CRLReason).value.reason == x509.ReasonFlags.key_compromise
    finally:
        with ctx.engine.begin() as conn:
            conn.execute(delete(Crl).where(Crl.issuer_id == root_id, Crl.crl_number > before))
            conn.execute(delete(CertificateAuthority).where(CertificateAuthority.name == "retired-test"))


def test_crl_endpoints_serve_der_with_cache_headers(api, ctx, queues):
    assert api.get("/crl/issuing.crl", role=None).code == "crl-not-found"
    assert api.get("/v1/crl").status == 404
    result = crl_publication.publish(ctx, force=True)[0]
    for name in ("issuing", "root", result.ca_name):
        r = api.get(f"/crl/{name}.crl", role=None)
        assert r.status == 200 and r.headers["Content-Type"] == "application/pkix-crl"
        crl = x509.load_der_x509_crl(r.content)
        max_age = int(r.headers["Cache-Control"].split("max-age=")[1].split(",")[0])
        until_next = (crl.next_update_utc - ctx.clock.now()).total_seconds()
        assert 0 < max_age <= until_next and until_next - max_age < 120
        assert r.headers["ETag"] and r.headers["Last-Modified"]
        assert api.get(f"/crl/{name}.crl", role=None, headers={"If-None-Match": r.headers["ETag"]}).status == 304
    assert api.get("/crl/no-such-ca.crl", role=None).status == 404
    assert api.get("/crl/Bad.Name.crl", role=None).status in (400, 404)
    for role in ("frontend", "operator", "auditor"):
        meta = api.get("/v1/crl", role=role)
        assert meta.status == 200, (role, meta)
        assert meta.json["crl_number"] == result.crl_number and meta.json["entries"] == 0
        assert meta.json["url"].endswith(f"/crl/{result.ca_name}.crl")
    assert api.get("/v1/crl", role=None).status == 401


def test_relay_keeps_one_waiting_publication_job_for_a_burst(api, ctx, test_env, queues):
    api.org("acme")
    serials = [_issue(api, f"u{i}") for i in range(6)]
    for serial in serials:  # every revocation's after_commit relays its outbox entry
        _revoke(api, serial)
    assert queued_count(test_env.redis_url, "crl") == 1  # one job waiting covers all six
    with ctx.sessions() as s:
        pending = s.scalars(select(OutboxEntry).where(OutboxEntry.dispatched_at.is_(None))).all()
    assert pending == []
    run_worker_burst(test_env)
    crl = x509.load_der_x509_crl((ctx.settings.public_dir / "issuing.crl").read_bytes())
    assert {format(e.serial_number, "x") for e in crl} == set(serials)
    _revoke(api, _issue(api, "late"))  # the job has run: the next revocation gets a new one
    assert queued_count(test_env.redis_url, "crl") == 1


def test_relay_keeps_entries_pending_while_redis_is_down(api, ctx, test_env, queues):
    api.org("acme")
    serial = _issue(api, "a")
    down = build_context(dataclasses.replace(ctx.settings, redis_url=f"redis://127.0.0.1:{free_port()}/0"), pool_size=1)
    try:
        from ca_service.services.certificates import revocation
        from tests.conftest import SYSTEM

        revocation.revoke(down, SYSTEM, serial, reason="key_compromise")  # succeeds without Redis
        with ctx.sessions() as s:
            entry = s.scalars(select(OutboxEntry)).one()
            assert entry.dispatched_at is None and entry.attempts == 1 and "Connection" in (entry.last_error or "")
        assert relay.dispatch_pending(ctx) == 1  # the sweep, Redis back
        assert queued_count(test_env.redis_url, "crl") == 1
    finally:
        down.engine.dispose()
    run_worker_burst(test_env)
    crl = x509.load_der_x509_crl((ctx.settings.public_dir / "issuing.crl").read_bytes())
    assert crl.get_revoked_certificate_by_serial_number(int(serial, 16)) is not None


def test_operator_publication_job_and_its_status(api, ctx, test_env, queues):
    assert api.post("/v1/crl/publications", role="frontend").status == 403
    r = api.post("/v1/crl/publications", role="operator")
    assert r.status == 202 and r.json["status"] == "queued"
    job_id = r.json["job_id"]
    assert api.get(f"/v1/jobs/{job_id}", role="operator").json["status"] == "queued"
    assert api.get(f"/v1/jobs/{job_id}", role="auditor").status == 403
    run_worker_burst(test_env)
    job = api.get(f"/v1/jobs/{job_id}", role="operator").json
    assert job["status"] == "finished" and job["error"] is None
    with ctx.sessions() as s:
        latest = s.scalars(select(Crl).order_by(Crl.id.desc())).first()
        issuing_id = active_ca(s, "issuing").id
        number = s.scalars(select(Crl.crl_number).where(Crl.issuer_id == issuing_id).order_by(Crl.id.desc())).first()
    assert latest is not None and job["result"]["crl_number"] == number
    assert {"this_update", "next_update", "entries"} <= set(job["result"])
    assert api.get("/v1/jobs/no-such-job", role="operator").code == "job-not-found"
    assert api.get("/v1/jobs/bad%20id", role="operator").status == 400


def test_cli_publish_and_show(ctx, test_env, queues):
    first = run_cli("crl", "publish", "--json", env=test_env.env()).stdout
    shown = run_cli("crl", "show", env=test_env.env()).stdout
    with ctx.sessions() as s:
        issuing = active_ca(s, "issuing")
        number = s.scalars(select(Crl.crl_number).where(Crl.issuer_id == issuing.id)).one()
        assert s.scalars(select(Certificate.id)).first() is None
    assert '"crl_number": 1' in first and issuing.name in shown and str(number) in shown


def test_an_issuing_ca_retired_by_a_rollover_keeps_its_crl(ctx, queues):
    from cryptography.x509.oid import NameOID

    from ca_service.pki.hierarchy import CAUrls, build_issuing
    from tests.support.workers import insert_certificates

    now = ctx.clock.now().replace(microsecond=0)
    name = f"issuing-old-{secrets.token_hex(3)}"
    with ctx.sessions() as s:
        root = active_ca(s, "root")
        root_id, root_cert, root_key = root.id, x509.load_der_x509_certificate(root.der), ctx.keys.signer(root.key_ref)
    ctx.keys.generate(name, "ec-p256")
    key = ctx.keys.signer(name)
    cert = build_issuing(
        key=key, subject=x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]), root_cert=root_cert,
        root_key=root_key, serial=x509.random_serial_number(), not_before=now - timedelta(days=1),
        not_after=now + timedelta(days=400), urls=CAUrls(crl_url="http://x/crl/root.crl", issuer_cert_url="http://x/ca/root.crt"),
    )  # fmt: skip
    with ctx.sessions() as s, s.begin():
        retired = authorities.store_ca(s, ctx, name=name, kind="issuing", cert=cert, key_algorithm="ec-p256", parent_id=root_id)
        retired.active = False
        retired_id = retired.id
    try:
        serial = insert_certificates(
            ctx, "acme", [{"login_id": "old", "not_after": now + timedelta(days=30), "revoked_at": now,
                           "revocation_reason": "affiliation_changed"}],
        )[0]  # fmt: skip
        with ctx.engine.begin() as conn:  # the row as the retired CA's
            conn.execute(update(Certificate).where(Certificate.serial == serial).values(issuer_id=retired_id))
        active_before = crl_publication.publish(ctx, force=True)
        names = [r.ca_name for r in active_before]
        assert names[1] == root.name and name in names and names[0] != name
        crl = x509.load_der_x509_crl((ctx.settings.public_dir / f"{name}.crl").read_bytes())
        assert crl.is_signature_valid(key.public_key()) and crl.issuer == cert.subject
        assert [format(e.serial_number, "x") for e in crl] == [serial]
        alias = x509.load_der_x509_crl((ctx.settings.public_dir / "issuing.crl").read_bytes())
        assert alias.issuer != cert.subject and len(alias) == 0  # the alias stays the active CA's
    finally:
        with ctx.engine.begin() as conn:
            conn.execute(delete(Certificate).where(Certificate.issuer_id == retired_id))
            conn.execute(delete(Crl).where(Crl.issuer_id == retired_id))
            conn.execute(delete(CertificateAuthority).where(CertificateAuthority.id == retired_id))
        (ctx.settings.keys_dir / f"{name}.key.pem").unlink(missing_ok=True)
        (ctx.settings.public_dir / f"{name}.crl").unlink(missing_ok=True)
