"""`ca-service init` is idempotent; the audit chain is verified and detects an edited row."""

from __future__ import annotations

import hashlib
import os
import stat
import subprocess
import sys

from sqlalchemy import select, update

from ca_service.store.models import AuditEvent, CertificateAuthority
from tests.support.pki import make_csr


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ca_service.cli.main", *args],
        capture_output=True,
        text=True,
        env=env or dict(os.environ),
        check=False,
        timeout=120,  # a serve that wrongly starts must fail the test, not hang it
    )


def _key_digests(ctx) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(ctx.settings.keys_dir.iterdir())}


def test_init_twice_changes_nothing(ctx):
    assert _cli("init").returncode == 0  # the first run may add what the fixture did not (OCSP responder)
    with ctx.sessions() as s:
        before_rows = [
            (r.name, r.serial, r.der) for r in s.scalars(select(CertificateAuthority).order_by(CertificateAuthority.id))
        ]
    before_keys = _key_digests(ctx)
    for _ in range(2):
        out = _cli("init")
        assert out.returncode == 0, out.stderr
        assert "created" not in out.stdout
    with ctx.sessions() as s:
        after_rows = [
            (r.name, r.serial, r.der) for r in s.scalars(select(CertificateAuthority).order_by(CertificateAuthority.id))
        ]
    assert after_rows == before_rows and _key_digests(ctx) == before_keys
    for path in ctx.settings.keys_dir.iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert b"ENCRYPTED PRIVATE KEY" in path.read_bytes()


def test_missing_setting_fails_with_one_line(ctx):
    env = dict(os.environ, CA_CERT_VALIDITY_MONTHS="twelve")
    out = _cli("init", env=env)
    assert out.returncode == 2 and out.stderr.strip().count("\n") == 0 and "CA_CERT_VALIDITY_MONTHS" in out.stderr
    env = {k: v for k, v in os.environ.items() if k not in ("CA_KEY_PASSPHRASE", "CA_KEY_PASSPHRASE_FILE")}
    out = _cli("serve", "--bind", "127.0.0.1:1", env=env)
    assert out.returncode == 2 and "CA_KEY_PASSPHRASE" in out.stderr and "Traceback" not in out.stderr


def test_serve_refuses_a_key_readable_by_others(ctx):
    key = ctx.settings.keys_dir / "issuing-1.key.pem"
    key.chmod(0o640)
    try:
        out = _cli("serve", "--bind", "127.0.0.1:1")
        assert out.returncode == 2 and "readable by group or others" in out.stderr
    finally:
        key.chmod(0o600)


def test_audit_chain_verifies_and_detects_an_edited_row(api, ctx):
    api.org("acme")
    api.user("alice", "acme")
    api.issue("alice", make_csr()[1])
    ok = _cli("audit", "verify")
    assert ok.returncode == 0 and "audit chain OK" in ok.stdout, ok.stderr
    with ctx.sessions() as s:
        events = s.scalars(select(AuditEvent).order_by(AuditEvent.chain_index)).all()
        assert [e.action for e in events][-3:] == ["organization.created", "user.created", "certificate.issued"]
        assert all(e.hash and e.chain_index for e in events)
        target = events[-2]
    with ctx.engine.begin() as conn:
        conn.execute(update(AuditEvent).where(AuditEvent.id == target.id).values(details='{"role":"master"}'))
    bad = _cli("audit", "verify")
    assert bad.returncode == 1 and f"event {target.id}" in bad.stderr and "edited" in bad.stderr


def test_audit_events_endpoint_pages_in_order(api):
    api.org("acme")
    for i in range(3):
        api.user(f"u{i}", "acme")
    first = api.get("/v1/audit-events", role="auditor", params={"limit": 2}).json
    assert len(first["items"]) == 2 and first["next_after_id"] == first["items"][-1]["id"]
    rest = api.get("/v1/audit-events", role="operator", params={"after_id": first["next_after_id"]}).json
    actions = [e["action"] for e in first["items"] + rest["items"]]
    assert actions == ["organization.created", "user.created", "user.created", "user.created"]
    assert rest["items"][-1]["client_name"] == "test-operator" and rest["next_after_id"] is None
    assert api.get("/v1/audit-events", role="frontend").status == 403
