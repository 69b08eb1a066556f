"""Finding 2 (issue 13): a stolen front-end token must not revoke a whole bank in a minute.
More than CA_FRONTEND_REVOCATIONS_PER_ORG_HOUR (default 20) front-end revocations per organisation
per hour get 429 revocation-limit-reached, across gunicorn workers and API replicas."""

from __future__ import annotations

from datetime import timedelta

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from sqlalchemy import update

from ca_service.store.models import User
from tests.support.api import Api
from tests.support.pki import make_csr
from tests.support.workers import insert_certificates


def _real_der(api: Api) -> bytes:
    """One real certificate's DER for the bulk rows (revocation answers with the certificate)."""
    api.org("donor")
    api.user("donor", "donor")
    pem = api.issue("donor", make_csr()[1]).json["certificate_pem"]
    return x509.load_pem_x509_certificate(pem.encode()).public_bytes(serialization.Encoding.DER)


def _bank(ctx, org_id: str, users: int, der: bytes) -> list[str]:
    now = ctx.clock.now()
    rows = [{"login_id": f"{org_id}-u{i:02d}", "not_after": now + timedelta(days=300)} for i in range(users)]
    rows.append({"login_id": f"{org_id}-boss", "not_after": now + timedelta(days=300)})
    serials = insert_certificates(ctx, org_id, rows, der=der)
    with ctx.engine.begin() as conn:
        conn.execute(update(User).where(User.login_id == f"{org_id}-boss").values(role="master"))
    return serials[:-1]


def _revoke(api: Api, serial: str, org_id: str, role: str = "frontend"):
    body = {"reason": "key_compromise", "acting_login_id": f"{org_id}-boss"} if role == "frontend" else {"reason": "unspecified"}
    return api.post(f"/v1/certificates/{serial}/revocation", role=role, json=body)


def test_frontend_revocations_stop_at_the_hourly_limit_across_replicas(ctx, live, live_processes, clock):
    der = _real_der(live)
    serials = _bank(ctx, "bank1", 25, der)
    other = _bank(ctx, "bank2", 1, der)
    replica = Api(live.tokens, base_url=live_processes.start_api(workers=2, name="api-replica"))
    apis = [live, replica]
    for i, serial in enumerate(serials[:20]):  # alternate replicas (and their gunicorn workers)
        r = _revoke(apis[i % 2], serial, "bank1")
        assert r.status == 200, (i, r)
    refused = _revoke(replica, serials[20], "bank1")
    assert refused.status == 429 and refused.code == "revocation-limit-reached", refused
    assert 0 < int(refused.headers["Retry-After"]) <= 3600
    assert _revoke(live, serials[21], "bank1").status == 429
    assert live.get(f"/v1/certificates/{serials[20]}", role="operator").json["status"] == "active"
    # another organisation is not affected; operators are never limited
    assert _revoke(live, other[0], "bank2").status == 200
    assert _revoke(live, serials[20], "bank1", role="operator").status == 200
    # the refusal is audited and counted
    events = live.get("/v1/audit-events", role="auditor", params={"limit": 1000}).json["items"]
    assert [e["target_id"] for e in events if e["action"] == "certificate.revocation_refused"] == [serials[20], serials[21]]
    metrics = live.get("/metrics", role=None).content.decode()
    assert "ca_revocation_limit_refusals_total" in metrics
    # an hour later the window has moved on
    clock.travel(hours=1, minutes=1)
    assert _revoke(live, serials[22], "bank1").status == 200
