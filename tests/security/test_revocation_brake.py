"""Finding 2 (issue 13): a stolen front-end token must not revoke a whole bank in a minute.
More than CA_FRONTEND_REVOCATIONS_PER_ORG_HOUR (default 20) front-end revocations per organisation
per hour get 429 revocation-limit-reached, across gunicorn workers and API replicas."""

from __future__ import annotations

from tests.support.api import Api
from tests.support.brakes import organisation_with_master, real_certificate_der


def _revoke(api: Api, serial: str, org_id: str, role: str = "frontend"):
    body = {"reason": "key_compromise", "acting_login_id": f"{org_id}-boss"} if role == "frontend" else {"reason": "unspecified"}
    return api.post(f"/v1/certificates/{serial}/revocation", role=role, json=body)


def test_frontend_revocations_stop_at_the_hourly_limit_across_replicas(ctx, live, live_processes, clock):
    der = real_certificate_der(live)
    serials = organisation_with_master(ctx, "bank1", 25, der)
    other = organisation_with_master(ctx, "bank2", 1, der)
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
