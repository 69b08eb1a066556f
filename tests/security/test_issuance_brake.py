"""Finding 2 (issue 26), the brake: a stolen front-end token renewed 25 certificates of one
organisation unbraked. Issuances and renewals now count towards a per-organisation hourly limit
(CA_FRONTEND_ISSUANCES_PER_ORG_HOUR, default 50) like front-end revocations: 429
issuance-limit-reached with Retry-After, audited, counted in ca_issuance_limit_refusals_total."""

from __future__ import annotations

from ca_service.context import Actor
from ca_service.services.audit import trail as audit
from ca_service.services.certificates import issuance
from ca_service.services.helpdesk import lookups as helpdesk
from tests.support.api import Api
from tests.support.pki import make_csr

FRONTEND = Actor(client_name="frontend", role="frontend")


def _users(api: Api, org_id: str, count: int, start: int = 0) -> list[str]:
    api.org(org_id)
    logins = [f"{org_id}-u{i:02d}" for i in range(start, start + count)]
    for login in logins:
        api.user(login, org_id)
    return logins


def test_attack_25_renewals_and_25_issuances_in_one_organisation_then_the_brake(ctx, api, clock):
    first = _users(api, "bank1", 25)
    serials = [api.issue(login, make_csr()[1]).json["serial"] for login in first]
    clock.travel(days=340)  # every certificate in its renewal window; the first hour long gone
    for serial in serials:  # the review's attack: 25 renewals with the attacker's keys
        r = api.post(f"/v1/certificates/{serial}/renewal", json={"csr": make_csr()[1]})
        assert r.status == 201, r
    for login in _users(api, "bank1", 25, start=25):
        assert api.issue(login, make_csr()[1]).status == 201
    # 50 in the hour: the next issuance and the next renewal are refused
    [extra] = _users(api, "bank1", 1, start=50)
    refused = api.issue(extra, make_csr()[1])
    assert refused.status == 429 and refused.code == "issuance-limit-reached", refused
    assert 0 < int(refused.headers["Retry-After"]) <= 3600
    clock.travel(minutes=1)
    [late] = _users(api, "bank1", 1, start=51)
    assert api.issue(late, make_csr()[1]).code == "issuance-limit-reached"
    # another organisation is not affected; an operator's enrolment code (EST) is not braked
    [other] = _users(api, "bank2", 1)
    assert api.issue(other, make_csr()[1]).status == 201
    view, _chain = issuance.issue_certificate(ctx, FRONTEND, extra, make_csr()[1], operator_authorised=True)
    assert view.login_id == extra
    # the refusals are audited and counted
    audit.seal_pending(ctx, wait=True)
    events = helpdesk.audit_events(ctx, helpdesk.AuditQuery(action="certificate.issuance_refused", limit=50))
    assert {e["target_id"] for e in events} == {extra, late}
    assert all(e["details"]["reason"] == "issuance-limit-reached" for e in events)
    assert "ca_issuance_limit_refusals_total" in api.get("/metrics", role=None).content.decode()
    # an hour later the window has moved on
    clock.travel(hours=1, minutes=1)
    assert api.issue(late, make_csr()[1]).status == 201


def test_a_renewal_over_the_limit_is_refused_and_nothing_changes(ctx, api, clock):
    logins = _users(api, "bank3", 51)
    serials = [api.issue(login, make_csr()[1]).json["serial"] for login in logins[:50]]
    assert api.issue(logins[50], make_csr()[1]).code == "issuance-limit-reached"
    clock.travel(minutes=61)
    serials.append(api.issue(logins[50], make_csr()[1]).json["serial"])
    clock.travel(days=340)
    for serial in serials[:50]:
        assert api.post(f"/v1/certificates/{serial}/renewal", json={"csr": make_csr()[1]}).status == 201
    refused = api.post(f"/v1/certificates/{serials[50]}/renewal", json={"csr": make_csr()[1]})
    assert refused.status == 429 and refused.code == "issuance-limit-reached", refused
    assert int(refused.headers["Retry-After"]) > 0
    assert api.get(f"/v1/certificates/{serials[50]}").json["status"] == "active"  # not superseded


def test_migration_0015_adds_the_index_and_goes_down_again(tmp_path):
    from alembic import command
    from sqlalchemy import create_engine, inspect

    from ca_service.store.migrate import alembic_config, upgrade_to_head

    engine = create_engine(f"sqlite:///{tmp_path / 'm.sqlite3'}")
    upgrade_to_head(engine)
    assert "ix_certificates_org_issued_at" in {i["name"] for i in inspect(engine).get_indexes("certificates")}
    config = alembic_config(engine)
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.downgrade(config, "0010")
    assert "ix_certificates_org_issued_at" not in {i["name"] for i in inspect(engine).get_indexes("certificates")}
    engine.dispose()


def test_the_brake_holds_under_concurrent_issuances_across_gunicorn_workers(api, live_processes):
    """12 issuances at once in one organisation through 3 gunicorn workers, limit 5: exactly 5
    certificates, 7 refusals (the count is taken under the organisation's row lock)."""
    from concurrent.futures import ThreadPoolExecutor

    logins = _users(api, "bank4", 12)
    url = live_processes.start_api(workers=3, name="api-brake", CA_FRONTEND_ISSUANCES_PER_ORG_HOUR="5")
    fast = Api(api.tokens, base_url=url)
    csrs = [make_csr()[1] for _ in logins]
    with ThreadPoolExecutor(12) as pool:
        results = list(pool.map(lambda pair: Api(api.tokens, base_url=url).issue(*pair), zip(logins, csrs, strict=True)))
    statuses = sorted(r.status for r in results)
    assert statuses == [201] * 5 + [429] * 7, [(r.status, r.code, r.json.get("detail")) for r in results if r.status != 201]
    assert {r.code for r in results if r.status == 429} == {"issuance-limit-reached"}
    issued = fast.get("/v1/certificates", params={"org_id": "bank4", "limit": 100}).json["items"]
    assert len(issued) == 5


def test_the_openapi_document_names_the_new_field_and_codes(api):
    document = api.get("/openapi.json", role=None).json
    renewal = document["components"]["schemas"]["RenewalBody"]["properties"]
    assert "current_key_signature" in renewal and "csr" in renewal
    text = str(document["paths"]["/v1/users/{login_id}/certificates"]["post"]["responses"])
    assert "issuance-limit-reached" in text and "not-permitted" in text
    text = str(document["paths"]["/v1/certificates/{serial}/renewal"]["post"]["responses"])
    assert "issuance-limit-reached" in text and "not-permitted" in text
    for path, method in (
        ("/v1/certificates/{serial}/revocation", "post"),
        ("/v1/organizations/{org_id}/login-method", "post"),
        ("/v1/users/{login_id}", "put"),
    ):
        assert "approval-required" in str(document["paths"][path][method]["responses"]), path
