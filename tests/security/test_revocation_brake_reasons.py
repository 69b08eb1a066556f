"""Finding 1 (issue 26): the revocation brake was skipped with `"reason": "superseded"`.

`superseded` is the renewal's own reason: no caller chooses it (400 validation-error naming
`reason`), and every front-end revocation counts towards the brake, whatever its reason. A
renewal's supersession (the predecessor of a successor) is not a front-end revocation request."""

from __future__ import annotations

from sqlalchemy import update

from ca_service.store.models import Certificate
from tests.support.api import Api
from tests.support.brakes import organisation_with_master, real_certificate_der
from tests.support.pki import make_csr

CHOOSABLE = ("unspecified", "key_compromise", "affiliation_changed", "cessation_of_operation", "privilege_withdrawn")


def _revoke(api: Api, serial: str, reason: str, role: str = "frontend"):
    body = {"reason": reason, "acting_login_id": "bank-boss"} if role == "frontend" else {"reason": reason}
    return api.post(f"/v1/certificates/{serial}/revocation", role=role, json=body)


def test_no_caller_chooses_superseded_and_the_brake_holds(api, ctx):
    serials = organisation_with_master(ctx, "bank", 24, real_certificate_der(api))
    # the attack of the finding: 40 (here 21) front-end revocations as "superseded" all passed
    for role in ("frontend", "operator"):
        refused = _revoke(api, serials[0], "superseded", role=role)
        assert refused.status == 400 and refused.code == "validation-error", refused
        assert [e["field"] for e in refused.json["errors"]] == ["reason"], refused.json
    assert api.get(f"/v1/certificates/{serials[0]}", role="operator").json["status"] == "active"
    # every other reason counts: 20 pass, the 21st is braked whatever its reason
    for i, serial in enumerate(serials[:20]):
        assert _revoke(api, serial, CHOOSABLE[i % len(CHOOSABLE)]).status == 200, i
    for reason in CHOOSABLE:
        braked = _revoke(api, serials[20], reason)
        assert braked.status == 429 and braked.code == "revocation-limit-reached", (reason, braked)


def test_a_stored_frontend_superseded_revocation_counts(api, ctx):
    """Revocations recorded as `superseded` by the old code (the attack already done) still count:
    only a renewal's predecessor (which has `superseded_by`) is left out of the brake."""
    serials = organisation_with_master(ctx, "bank", 22, real_certificate_der(api))
    now = ctx.clock.now()
    with ctx.engine.begin() as conn:
        conn.execute(
            update(Certificate)
            .where(Certificate.serial.in_(serials[:20]))
            .values(revoked_at=now, revocation_reason="superseded", revoked_by_role="frontend", current_login_id=None)
        )
    braked = _revoke(api, serials[20], "key_compromise")
    assert braked.status == 429 and braked.code == "revocation-limit-reached", braked


def test_a_renewal_does_not_count_towards_the_brake(api, ctx, clock):
    serials = organisation_with_master(ctx, "bank", 21, real_certificate_der(api))
    api.user("bank-renewer", "bank")
    issued = api.issue("bank-renewer", make_csr()[1]).json
    old, days = issued["serial"], issued["days_remaining"]
    for i, serial in enumerate(serials[:19]):
        assert _revoke(api, serial, CHOOSABLE[i % len(CHOOSABLE)]).status == 200, i
    clock.travel(days=days - 10)  # inside the renewal window
    renewed = api.post(f"/v1/certificates/{old}/renewal", json={"csr": make_csr()[1]})
    assert renewed.status == 201, renewed
    assert api.get(f"/v1/certificates/{old}", role="operator").json["revocation_reason"] == "superseded"
    clock.reset()
    assert _revoke(api, serials[19], "unspecified").status == 200  # the 20th front-end revocation
    assert _revoke(api, serials[20], "unspecified").status == 429
