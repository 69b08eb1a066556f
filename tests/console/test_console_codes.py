"""The console's enrolment codes (DESIGN §4c, issue 23): the user page lists a user's outstanding
codes (when, by whom, until when in Japan time, wrong attempts; never the code) and voids them;
the help desk mints a master's code with the paper ticket, shown once, and the master re-installs
with it over EST (Q11). In-process, on the real database."""

from __future__ import annotations

import re

import pytest
from babel.messages.pofile import read_po

from ca_service.console import catalogue
from ca_service.services.audit import trail as audit
from ca_service.services.helpdesk import lookups as helpdesk
from tests.console.test_console_app import Console, _Fields
from tests.support.console import make_operator
from tests.test_est import clear_auth_throttle, csr_b64, enrol, mint
from tests.test_operations_cli import setup_org

CODE = re.compile(r"\b[0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]{4}\b")


@pytest.fixture(autouse=True)
def fresh_throttle(ctx):
    clear_auth_throttle(ctx)
    yield
    clear_auth_throttle(ctx)


@pytest.fixture
def app(ctx):
    from ca_service.api.app import create_app

    return create_app(ctx)


def _audit_text(ctx, login_id: str) -> str:
    audit.seal_pending(ctx, wait=True)
    return repr(helpdesk.audit_events(ctx, helpdesk.AuditQuery(target=login_id)))


def test_the_help_desk_mints_a_masters_code_with_the_ticket_and_the_master_re_installs(ctx, api, app):
    boss = setup_org(api, "acme", ())["acme-boss"]
    r = api.post(f"/v1/certificates/{boss}/revocation", role="operator", json={"reason": "key_compromise", "ticket": "HD-1"})
    assert r.status == 200, r
    # after the revocation the front end may not mint the master's code (R9, Q11)
    assert api.post("/v1/users/acme-boss/enrolment-codes", json={}).code == "not-permitted"
    alice = Console(app, make_operator(ctx, "hd-mint"))
    page = "/console/users/acme-boss/enrolment-code"
    form = alice.get(page)
    assert form.status_code == 200 and 'name="ticket"' in form.text and "required" in form.text
    missing = alice.post(page, {"ticket": " "}, page=page)
    assert missing.status_code == 400 and 'aria-describedby="ticket-error"' in missing.text
    assert alice.get("/console/users/acme-boss").text.count("<td>console:hd-mint") == 0  # nothing minted
    shown = alice.post(page, {"ticket": "HD-2"}, page=page)
    assert shown.status_code == 200 and shown.headers["Cache-Control"] == "no-store"
    codes = CODE.findall(shown.text)
    assert len(codes) == 1 and "JST" in shown.text
    code = codes[0]
    # listed on the user page without the code; the code is nowhere but on that one answer
    user_page = alice.get("/console/users/acme-boss").text
    assert "console:hd-mint, " in user_page and "HD-2" in user_page and code not in user_page
    assert code not in _audit_text(ctx, "acme-boss")
    # the master re-installs: the certificate issuance app enrols with the code (EST)
    _key, body = csr_b64()
    got = enrol(api, "acme-boss", code, body)
    assert got.status == 200, got
    assert api.get("/v1/users/acme-boss", role="operator").json["current_certificate"] is not None
    events = helpdesk.audit_events(ctx, helpdesk.AuditQuery(action="enrolment_code.minted", target="acme-boss"))
    assert [(e["client_name"], e["details"]["ticket"]) for e in events] == [("console:hd-mint", "HD-2")]


def test_the_user_page_lists_outstanding_codes_and_voids_them(ctx, api, app):
    setup_org(api, "acme", ("taro",))
    api.post(f"/v1/certificates/{api.get('/v1/users/taro').json['current_certificate']['serial']}/revocation",
             role="operator", json={"reason": "affiliation_changed"})  # fmt: skip
    code = mint(api, "taro")  # the front end, on the 電子証明書発行 screen
    _key, body = csr_b64()
    assert enrol(api, "taro", "0000-0000-0000-0000", body).status == 401  # one wrong attempt
    alice = Console(app, make_operator(ctx, "hd-void"))
    shown = alice.get("/console/users/taro")
    assert shown.status_code == 200 and code not in shown.text and code.replace("-", "") not in shown.text
    section = shown.text.split('id="codes"', 1)[1].split("</section>", 1)[0]
    assert "test-frontend" in section and section.count("JST") == 2 and "<td>1</td>" in section  # made, until; attempts
    # voiding needs the form's token
    no_token = alice.client.post("/console/users/taro/enrolment-codes/void", data={})
    assert no_token.status_code == 400
    done = alice.post("/console/users/taro/enrolment-codes/void", {}, page="/console/users/taro")
    assert done.status_code == 302
    after = alice.get("/console/users/taro").text
    assert "証明書発行コードを1件無効にしました。" in after  # the flash message, in the operator's language
    assert 'id="codes"' in after and "test-frontend" not in after.split('id="codes"', 1)[1].split("</section>", 1)[0]
    assert enrol(api, "taro", code, body).status == 401  # the voided code no longer works
    events = helpdesk.audit_events(ctx, helpdesk.AuditQuery(action="enrolment_code.voided", target="taro"))
    assert [(e["client_name"], e["details"]["reason"]) for e in events] == [("console:hd-void", "voided-by-operator")]
    assert code not in _audit_text(ctx, "taro")


def test_the_code_pages_render_in_japanese_and_english_with_labels(ctx, api, app):
    setup_org(api, "acme", ("taro",))
    mint(api, "taro")
    alice = Console(app, make_operator(ctx, "hd-pages"))
    english = {m.id for m in read_po(catalogue.PO.open("rb"), locale="ja") if m.id and len(m.id) > 12 and "%" not in m.id}
    for lang in ("ja", "en"):
        for path in ("/console/users/taro", "/console/users/acme-boss/enrolment-code", "/console/users/taro/enrolment-code"):
            resp = alice.get(f"{path}?lang={lang}")
            assert resp.status_code == 200 and f'<html lang="{lang}">' in resp.text, path
            parser = _Fields()
            parser.feed(resp.text)
            assert [f for f in parser.fields if f not in parser.labels] == [], path
            if lang == "ja":
                assert [s for s in english if s in resp.text] == [], path
    minted = alice.post("/console/users/taro/enrolment-code?lang=ja", {"ticket": ""}, page="/console/users/taro/enrolment-code")
    assert minted.status_code == 200 and "1回だけ有効" in minted.text  # a general user's code needs no ticket
