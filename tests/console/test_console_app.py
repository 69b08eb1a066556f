"""The operator console in-process (Flask test client on the real database): its place beside the
JSON API (not in /openapi.json, the API's auth and body rules untouched), cookies and headers,
CSRF, sessions (inactivity, logout, disabled account), TOTP replay, dual control, failed notice
emails, the `operators` CLI, the catalogue, and labels on every field."""

from __future__ import annotations

import dataclasses
import re
from html.parser import HTMLParser

import pyotp
import pytest
from babel.messages.pofile import read_po
from redis import Redis
from rq import Queue
from sqlalchemy import text

from ca_service.api.app import create_app
from ca_service.console import catalogue
from ca_service.services.access import operators
from ca_service.services.audit import trail as audit
from ca_service.services.helpdesk import approvals
from ca_service.services.helpdesk import lookups as helpdesk
from ca_service.store.models import Notice
from tests.support.console import ADMIN, csrf_of, fresh_otp, make_operator
from tests.support.workers import run_worker_burst
from tests.test_operations_cli import as_json, setup_org
from tests.test_operations_cli import redis_queues as redis_queues  # a fixture, used by name


class Console:
    """A logged-in browser stand-in: the test client keeps the cookies; forms carry the token."""

    def __init__(self, app, creds=None) -> None:
        self.client = app.test_client()
        self.clock_file = app.extensions["ca_service"].settings.clock_offset_file  # moved on for a fresh TOTP step
        self.creds = creds
        if creds is not None:
            self.login(creds)

    def login(self, creds, otp: str | None = None):
        token = csrf_of(self.client.get("/console/login").text)
        otp = otp or fresh_otp(creds, self.clock_file)
        form = {"csrf_token": token, "username": creds.username, "password": creds.password, "otp": otp}
        return self.client.post("/console/login", data=form)

    def get(self, path: str):
        return self.client.get(path)

    def post(self, path: str, form: dict[str, str], *, page: str = "/console/"):
        token = csrf_of(self.client.get(page).text)
        return self.client.post(path, data={"csrf_token": token, **form})


@pytest.fixture
def app(ctx):
    return create_app(ctx)


def _with(ctx, **settings):
    return create_app(dataclasses.replace(ctx, settings=dataclasses.replace(ctx.settings, **settings)))


def test_the_console_is_not_in_the_openapi_document_and_the_api_is_unchanged(app, tokens):
    client = app.test_client()
    paths = client.get("/openapi.json").json["paths"]
    assert paths and not [p for p in paths if p.startswith("/console")]
    assert client.get("/v1/crl").status_code == 401  # bearer auth as before
    form_post = client.post(
        "/v1/crl/publications", data={"a": "b"}, headers={"Authorization": f"Bearer {tokens['operator']}"}
    )  # an HTML form body is still refused by the API
    assert form_post.status_code == 415 and form_post.json["code"] == "unsupported-media-type"
    assert "Set-Cookie" not in client.get("/healthz").headers


def test_an_unknown_console_page_is_an_html_page_in_the_operators_language(ctx, app):
    anonymous = app.test_client().get("/console/no-such-page")
    assert anonymous.status_code == 302 and "/console/login" in anonymous.headers["Location"]  # nothing told first
    alice = Console(app, make_operator(ctx, "alice"))
    for lang, wording in (("ja", "コンソールにこのページはありません。"), ("en", "There is no such page in the console.")):
        missing = alice.get(f"/console/certificates/abc/nothing?lang={lang}")
        assert missing.status_code == 404 and missing.mimetype == "text/html", missing.headers
        assert f'<html lang="{lang}">' in missing.text and wording in missing.text
    assert alice.get("/console/static/console.css").status_code in (200, 304)  # static files still served
    api_missing = app.test_client().get("/v1/no-such-resource")
    assert api_missing.status_code == 404 and api_missing.mimetype == "application/problem+json"  # the API unchanged


def test_cookies_and_headers_are_strict(ctx):
    app = _with(ctx, console_secure_cookies=True)  # the default (tests over http turn it off)
    creds = make_operator(ctx, "alice")
    console = Console(app)
    resp = console.login(creds)
    assert resp.status_code == 302
    cookie = resp.headers["Set-Cookie"]
    for flag in ("Secure", "HttpOnly", "SameSite=Strict", "Path=/console"):
        assert flag in cookie, cookie
    page = console.get("/console/login")
    csp = page.headers["Content-Security-Policy"]
    assert "default-src 'none'" in csp and "script-src" not in csp  # no script may run at all
    assert "frame-ancestors 'none'" in csp and page.headers["X-Frame-Options"] == "DENY"


def test_forms_without_the_csrf_token_are_refused(ctx, app):
    creds = make_operator(ctx, "alice")
    anonymous = app.test_client()
    anonymous.get("/console/login")
    form = {"username": "alice", "password": creds.password, "otp": pyotp.TOTP(creds.totp_secret).now()}
    assert anonymous.post("/console/login", data=form).status_code == 400
    console = Console(app, creds)
    assert console.client.post("/console/crl/publish", data={}).status_code == 400
    assert console.client.post("/console/crl/publish", data={"csrf_token": "forged"}).status_code == 400
    audit.seal_pending(ctx, wait=True)
    assert helpdesk.audit_events(ctx, helpdesk.AuditQuery(action="crl.publication_requested")) == []


def test_sessions_end_after_inactivity_logout_and_disable(ctx, app, clock):
    alice = Console(app, make_operator(ctx, "alice"))
    assert alice.get("/console/").status_code == 200
    clock.travel(minutes=ctx.settings.console_session_minutes + 1)
    expired = alice.get("/console/")
    assert expired.status_code == 302 and "expired=1" in expired.headers["Location"]
    clock.reset()

    bob_creds = make_operator(ctx, "bob")
    bob = Console(app, bob_creds)
    stolen = bob.client.get_cookie("ca_console", path="/console").value
    bob.post("/console/logout", {})
    thief = app.test_client()
    thief.set_cookie("ca_console", stolen, path="/console")
    assert thief.get("/console/").status_code == 302  # the logged-out cookie no longer works

    carol = Console(app, make_operator(ctx, "carol"))
    operators.disable(ctx, ADMIN, "carol")
    assert carol.get("/console/").status_code == 302


def test_a_totp_code_is_accepted_once_and_failures_lock_the_account(ctx, app):
    creds = make_operator(ctx, "alice")
    code = fresh_otp(creds, ctx.settings.clock_offset_file)
    assert Console(app).login(creds, otp=code).status_code == 302
    replay = Console(app).login(creds, otp=code)
    assert replay.status_code == 401
    for _ in range(ctx.settings.console_lockout_failures - 1):  # the replay was one failure
        assert Console(app).login(dataclasses.replace(creds, password="wrong"), otp="123456").status_code == 401
    locked = Console(app).login(creds)
    assert locked.status_code == 429 and "ロック" in locked.text
    reset = operators.reset(ctx, ADMIN, "alice")  # a colleague resets it: unlocked, new secrets
    assert Console(app).login(reset).status_code == 302
    audit.seal_pending(ctx, wait=True)
    actions = [e["action"] for e in helpdesk.audit_events(ctx, helpdesk.AuditQuery(target="alice", limit=50))]
    assert actions.count("operator.login_failed") == ctx.settings.console_lockout_failures
    assert "operator.locked" in actions and "operator.reset" in actions


def test_dual_control_master_revocation_needs_a_different_operator_within_24_hours(ctx, api, clock):
    serials = setup_org(api, "acme", ("taro",))
    app = _with(ctx, dual_control=True)
    alice = Console(app, make_operator(ctx, "alice"))
    boss = serials["acme-boss"]
    page = f"/console/certificates/{boss}/revoke"
    form = {"reason": "affiliation_changed", "ticket": "HD-1", "confirmed": "yes"}
    asked = alice.post(page, form, page=page)
    assert asked.status_code == 302 and "/console/approvals/" in asked.headers["Location"]
    approval_id = int(asked.headers["Location"].rsplit("/", 1)[1])
    assert helpdesk.certificate_detail(ctx, boss).certificate.status == "active"  # not yet
    refused = alice.post(f"/console/approvals/{approval_id}/decision", {"decision": "approve"})
    assert refused.status_code == 403 and "same-operator" in refused.text
    general = serials["taro"]  # a general user's certificate is revoked at once, even under dual control
    done = alice.post(f"/console/certificates/{general}/revoke", form, page=f"/console/certificates/{general}/revoke")
    assert done.status_code == 302 and helpdesk.certificate_detail(ctx, general).certificate.status == "revoked"

    clock.travel(hours=24, seconds=1)
    bob_creds = make_operator(ctx, "bob")
    bob = Console(app)
    bob.login(bob_creds, otp=pyotp.TOTP(bob_creds.totp_secret).at(clock.now()))  # the server's clock moved
    late = bob.post(f"/console/approvals/{approval_id}/decision", {"decision": "approve"})
    assert late.status_code == 409 and "approval-not-pending" in late.text
    assert approvals.get(ctx, approval_id).status == "expired"
    assert helpdesk.certificate_detail(ctx, boss).certificate.status == "active"


def test_approved_master_revocation_names_both_operators_and_the_ticket(ctx, api):
    serials = setup_org(api, "acme", ())
    boss = serials["acme-boss"]
    alice, bob = operators.console_actor("alice"), operators.console_actor("bob")
    pending = approvals.request(ctx, alice, approvals.REVOCATION, boss, {"reason": "key_compromise"}, "HD-7")
    done = approvals.approve(ctx, bob, pending.id)
    assert done.status == "approved" and done.decided_by == "console:bob"
    audit.seal_pending(ctx, wait=True)
    [event] = helpdesk.audit_events(ctx, helpdesk.AuditQuery(action="certificate.revoked", target=boss))
    assert event["client_name"] == "console:bob"
    wanted = {"requested_by": "console:alice", "approved_by": "console:bob", "ticket": "HD-7"}
    assert {k: event["details"].get(k) for k in wanted} == wanted


def test_a_failed_notice_email_is_sent_again_from_the_console(ctx, api, app):
    serial = setup_org(api, "acme", ("taro",))["taro"]
    with ctx.engine.begin() as conn:
        conn.execute(
            Notice.__table__.insert().values(
                kind="certificate_expiring", serial=serial, login_id="taro", not_after=ctx.clock.now(),
                created_at=ctx.clock.now(), email_status="failed", email_attempts=5, email_last_error="550 mailbox unavailable",
            )
        )  # fmt: skip
    alice = Console(app, make_operator(ctx, "alice"))
    listed = alice.get("/console/failures").text
    assert "550 mailbox unavailable" in listed
    notice_id = int(re.search(r"/console/failures/notices/(\d+)/retry", listed).group(1))
    assert alice.post(f"/console/failures/notices/{notice_id}/retry", {}).status_code == 302
    assert helpdesk.list_notices(ctx, failed_only=False, login_id="taro")[0]["email_status"] == "pending"
    with ctx.engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM outbox WHERE kind = 'notice.email'")).scalar() == 1
    audit.seal_pending(ctx, wait=True)
    [event] = helpdesk.audit_events(ctx, helpdesk.AuditQuery(action="notice.email_retried"))
    assert event["client_name"] == "console:alice"


def test_the_operators_cli(ctx):
    created = as_json("operators", "create", "--username", "hd.sato", "--display-name", "佐藤", "--json")
    assert set(created) >= {"username", "password", "totp_secret"} and created["username"] == "hd.sato"
    with ctx.engine.connect() as conn:
        stored = conn.execute(text("SELECT password_hash FROM operators WHERE username = 'hd.sato'")).scalar()
    assert stored.startswith("$argon2id$") and created["password"] not in stored
    assert operators.authenticate(ctx, "hd.sato", created["password"], pyotp.TOTP(created["totp_secret"]).now())
    assert [o["username"] for o in as_json("operators", "list", "--json")] == ["hd.sato"]
    reset = as_json("operators", "reset", "hd.sato", "--json")
    assert reset["password"] != created["password"]
    assert as_json("operators", "disable", "hd.sato", "--json")["disabled_at"] is not None


def test_the_totp_seed_is_sealed_at_rest_and_useless_under_another_console_secret(ctx, caplog):
    """Whoever reads the database (a backup, a DBA) gets neither the password (argon2) nor the
    second factor: the seed is sealed with CA_CONSOLE_SECRET_KEY, kept outside the database."""
    creds = make_operator(ctx, "hd.kato")
    with ctx.engine.connect() as conn:
        stored = conn.execute(text("SELECT totp_secret FROM operators WHERE username = 'hd.kato'")).scalar()
    assert stored.startswith("f1:") and creds.totp_secret not in stored
    code = pyotp.TOTP(creds.totp_secret).at(ctx.clock.now())
    settings = dataclasses.replace(ctx.settings, console_secret_value="another-secret-" + "x" * 32)
    other = dataclasses.replace(ctx, settings=settings)
    with pytest.raises(operators.LoginRefused):  # another key: refused (and logged), never a 500
        operators.authenticate(other, "hd.kato", creds.password, code)
    assert "cannot be unsealed" in caplog.text
    assert operators.authenticate(ctx, "hd.kato", creds.password, code).username == "hd.kato"


def test_every_message_is_translated_and_the_committed_catalogue_is_compiled():
    with catalogue.PO.open("rb") as f:
        po = read_po(f, locale="ja")
    assert [m.id for m in po if m.id and not m.string] == []
    extracted = read_po(__import__("io").BytesIO(catalogue.extract(catalogue.HERE.parents[1])))
    assert {m.id for m in extracted if m.id} == {m.id for m in po if m.id}, "run python -m ca_service.console.catalogue"
    assert catalogue.PO.with_suffix(".mo").read_bytes() == catalogue.compile_mo()


class _Fields(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.fields: list[str] = []
        self.labels: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag in ("input", "select", "textarea") and a.get("type") != "hidden":
            self.fields.append(a.get("id") or f"<{tag} name={a.get('name')} without id>")
        if tag == "label" and a.get("for"):
            self.labels.add(a["for"] or "")


def test_every_page_renders_in_japanese_and_english_with_labels_on_every_field(ctx, api, app):
    serials = setup_org(api, "acme", ("taro",))
    alice = Console(app, make_operator(ctx, "alice"))
    pending = approvals.request(
        ctx, operators.console_actor("bob"), approvals.SWITCH, "acme", {"login_method": "id_password"}, "T"
    )
    pages = [
        "/console/?q=acme", "/console/organizations/acme", "/console/users/taro", f"/console/certificates/{serials['taro']}",
        f"/console/certificates/{serials['taro']}/revoke", "/console/organizations/acme/login-method", "/console/approvals",
        f"/console/approvals/{pending.id}", "/console/crl", "/console/failures", "/console/audit", "/console/login",
        "/console/users/taro/role",
    ]  # fmt: skip
    english = {m.id for m in read_po(catalogue.PO.open("rb"), locale="ja") if m.id and len(m.id) > 12 and "%" not in m.id}
    for lang in ("ja", "en"):
        for path in pages:
            resp = alice.get(f"{path}{'&' if '?' in path else '?'}lang={lang}")
            assert resp.status_code == 200, (path, resp.text[:500])
            assert f'<html lang="{lang}">' in resp.text
            parser = _Fields()
            parser.feed(resp.text)
            unlabelled = [f for f in parser.fields if f not in parser.labels]
            assert unlabelled == [], (path, unlabelled)
            if lang == "ja":
                leftover = [s for s in english if s in resp.text]
                assert leftover == [], (path, leftover)  # no English text left on a Japanese page
        assert "JST" in alice.get("/console/users/taro").text  # dates in Japan time, zone shown


def test_a_master_users_certificate_is_revoked_only_with_the_ticket(ctx, api, app):
    boss = setup_org(api, "acme", ())["acme-boss"]
    alice = Console(app, make_operator(ctx, "alice"))
    page = f"/console/certificates/{boss}/revoke"
    missing = alice.post(page, {"reason": "affiliation_changed", "ticket": "", "confirmed": "yes"}, page=page)
    assert missing.status_code == 400 and 'aria-describedby="ticket-error"' in missing.text  # the form again, the field marked
    assert helpdesk.certificate_detail(ctx, boss).certificate.status == "active"
    done = alice.post(page, {"reason": "affiliation_changed", "ticket": "HD-9", "confirmed": "yes"}, page=page)
    assert done.status_code == 302
    detail = helpdesk.certificate_detail(ctx, boss)
    assert (detail.certificate.status, detail.revoked_by_client, detail.revocation_ticket) == ("revoked", "console:alice", "HD-9")


def test_a_role_changes_to_and_from_master_only_with_the_ticket_and_is_audited(ctx, api, app):
    setup_org(api, "acme", ("taro",))
    alice = Console(app, make_operator(ctx, "alice"))
    page = "/console/users/taro/role"
    missing = alice.post(page, {"role": "master", "ticket": ""}, page=page)
    assert missing.status_code == 400 and 'aria-describedby="ticket-error"' in missing.text
    same = alice.post(page, {"role": "general", "ticket": "HD-1"}, page=page)
    assert same.status_code == 400 and 'aria-describedby="role-error"' in same.text
    assert api.get("/v1/users/taro", role="operator").json["role"] == "general"  # nothing written
    assert alice.post(page, {"role": "master", "ticket": "HD-2"}, page=page).status_code == 302
    assert api.get("/v1/users/taro", role="operator").json["role"] == "master"
    assert alice.post(page, {"role": "general", "ticket": "HD-3"}, page=page).status_code == 302
    assert api.get("/v1/users/taro", role="operator").json["role"] == "general"
    audit.seal_pending(ctx, wait=True)
    events = helpdesk.audit_events(ctx, helpdesk.AuditQuery(action="user.updated", target="taro"))
    assert sorted((e["client_name"], e["details"]["ticket"], e["details"]["role"]) for e in events) == [
        ("console:alice", "HD-2", "master"),
        ("console:alice", "HD-3", "general"),
    ]


@pytest.mark.usefixtures("redis_queues")
def test_the_job_page_shows_the_crl_times_in_japan_time(ctx, app, test_env):
    alice = Console(app, make_operator(ctx, "alice"))
    asked = alice.post("/console/crl/publish", {}, page="/console/crl")
    assert asked.status_code == 302 and "/console/jobs/" in asked.headers["Location"]
    run_worker_burst(test_env)  # a real worker publishes the CRL
    shown = alice.get(asked.headers["Location"].removeprefix("http://localhost"))
    result = shown.text.split('id="job-result"', 1)[1].split("</dl>", 1)[0]
    times = re.findall(r"<dd>([^<]*)</dd>", result)
    assert sum(t.endswith(" JST") for t in times) == 2, result  # thisUpdate and nextUpdate, not RFC 3339 UTC
    assert not re.search(r"\d{4}-\d\d-\d\dT", result), result
    assert "True" not in result and "False" not in result, result  # a boolean as a word (issue 27), not Python's


@pytest.mark.usefixtures("redis_queues")
def test_a_failed_job_is_listed_and_retried_from_the_console(ctx, app, test_env):
    queue = Queue("default", connection=Redis.from_url(test_env.redis_url))
    job = queue.enqueue("workers.jobs.expiry_scan_job", kwargs={"as_of": "not-a-date"})
    run_worker_burst(test_env)  # a real worker: the job fails (an as_of from the queue is refused)
    alice = Console(app, make_operator(ctx, "alice"))
    listed = alice.get("/console/failures").text
    assert job.id in listed and "ForeignJobRefused" in listed
    assert alice.post(f"/console/failures/jobs/{job.id}/retry", {}).status_code == 302
    assert job.id in queue.get_job_ids() and job.id not in queue.failed_job_registry.get_job_ids()
    audit.seal_pending(ctx, wait=True)
    [event] = helpdesk.audit_events(ctx, helpdesk.AuditQuery(action="job.requeued", target=job.id))
    assert event["client_name"] == "console:alice"
