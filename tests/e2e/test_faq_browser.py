"""The FAQ walked in real Chromium (issue 24; DESIGN §6): certificates installed by ca-enroll into
the NSS database of a temporary HOME (a "PC"), presented by Debian's Chromium (auto-selected by the
managed policy AutoSelectCertificateForUrls) to the reference front end (examples/frontend) behind
nginx, which asks the CA (real gunicorn) whether the login is allowed. With
CA_FAQ_SCREENSHOTS=<dir> every step is saved as a PNG (docs/faq/, embedded in docs/faq-browser.md).

Clocks: Chromium runs on the real clock and offers only certificates valid now (as Chrome does),
so "330 days later" is staged by issuing 330 days in the past (the bank's clock moved back with
CA_CLOCK_OFFSET_FILE and the PC's with faketime while ca-enroll runs) and then returning to now."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.api import Api
from tests.support.background import SmtpServer, wait_for
from tests.support.cli import run_cli
from tests.support.enroll import Pc
from tests.support.faq_browser import CHROMIUM, PASSWORD, POLICY_DIR, FrontEnd, chromium_on
from tests.support.workers import run_worker_burst

pytest.importorskip("playwright.sync_api")
pytestmark = [pytest.mark.browser, pytest.mark.xdist_group("faq-browser")]
SHOTS = Path(os.environ["CA_FAQ_SCREENSHOTS"]) if os.environ.get("CA_FAQ_SCREENSHOTS") else None
LOGINS = ["alice", "bob", "hanako", "jiro"]


@pytest.fixture(scope="module")
def world(live_processes, tokens, tmp_path_factory) -> Iterator[tuple[str, FrontEnd]]:
    if CHROMIUM is None:
        pytest.skip("Debian's chromium is not installed (apt-get install chromium)")
    if not os.access(POLICY_DIR if POLICY_DIR.exists() else POLICY_DIR.parent.parent, os.W_OK):
        pytest.skip(f"{POLICY_DIR} is not writable (the managed policy needs root)")
    api_url = live_processes.start_api(workers=2, name="faq-api", CA_TRUSTED_PROXIES="127.0.0.1/32")
    front = FrontEnd(tmp_path_factory.mktemp("faq-front"), api_url, tokens["frontend"], LOGINS)
    yield api_url, front
    front.stop()


@pytest.fixture
def bank(world, tokens, ctx) -> Api:
    api = Api(tokens, base_url=world[0])
    api.org("acme", name="アクメ株式会社")
    api.user("alice", "acme", email="alice@example.jp")
    api.user("bob", "acme", email="bob@example.jp")
    api.user("hanako", "acme", role="master", email="hanako@example.jp")
    api.org("beta", login_method="id_password", name="ベータ労働組合")
    api.user("jiro", "beta", email="jiro@example.jp")
    return api


@pytest.fixture
def front(world) -> Iterator[FrontEnd]:
    world[1].set_clock(0)
    yield world[1]
    world[1].set_clock(0)


def shot(page, name: str) -> None:
    if SHOTS is not None:
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def code_from_front_end(page, front: FrontEnd, login_id: str, shot_name: str | None = None) -> str:
    """「電子証明書発行」: login ID + password, then the code shown with the ca-enroll command."""
    page.goto(front.url + "/")
    page.click("#enrolment-link")
    page.fill("#login-id", login_id)
    page.fill("#password", PASSWORD.format(login_id))
    page.click("#issue-code")
    page.wait_for_selector("#code")
    assert f"--login-id {login_id}" in page.inner_text("#command")
    if shot_name:
        shot(page, shot_name)
    return page.inner_text("#code").strip()


def enrol(pc: Pc, front: FrontEnd, login_id: str, *, days: float = 0, shot_name: str | None = None) -> dict:
    """The user's whole issuance: the code from the front end (in a browser on that PC), then
    ca-enroll on the PC. Returns the certificate as `ca-enroll status --json` lists it."""
    # a PC that holds certificates would get Chromium's certificate dialog: auto-select one of them
    holder = next((c.subject.rfc4514_string().split(",")[0][3:] for c in pc.certificates()), None)
    with chromium_on(pc, front, holder, days=days) as page:
        code = code_from_front_end(page, front, login_id, shot_name)
    r = pc.run("enroll", *front.enroll_args(), "--login-id", login_id, "--code-stdin", stdin=code, days=days)
    assert r.returncode == 0, r.stderr + r.stdout
    rows = json.loads(pc.run("status", "--json", days=days).stdout)
    return next(row for row in rows if row["login_id"] == login_id)


def login(page, front: FrontEnd, login_id: str, *, method: str = "certificate") -> str:
    """The login screen: 「電子証明書方式のお客様」 (certificate + password) or 「ID・パスワード方式」."""
    page.goto(front.url + "/")
    assert page.locator("#cert-login-id").count() == 1, (page.url, page.content()[:1500])
    prefix = "cert" if method == "certificate" else "pw"
    page.fill(f"#{prefix}-login-id", login_id)
    page.fill(f"#{prefix}-password", PASSWORD.format(login_id))
    page.click(f"#{prefix}-login")
    page.wait_for_load_state()
    return page.url


def refused(page) -> str:
    assert page.locator("#error").count() == 1, page.content()[:2000]
    return page.inner_text("#error")


def test_q1_q2_q6_a_certificate_admits_its_own_user_on_its_own_pc(bank, front, tmp_path):
    pc1, pc2 = Pc(tmp_path / "pc1"), Pc(tmp_path / "pc2")
    alice = enrol(pc1, front, "alice", shot_name="q1-enrolment-code")
    with chromium_on(pc1, front, "alice") as page:
        page.goto(front.url + "/")
        shot(page, "q1-login-screen")
        assert login(page, front, "alice").endswith("/home"), page.content()[:2000]
        assert "ようこそ alice さん" in page.inner_text("h1")
        assert page.inner_text("#serial") == alice["serial"]
        shot(page, "q1-after-login")
    with chromium_on(pc2, front, "alice") as page:  # Q2: another PC, without alice's certificate
        login(page, front, "alice")
        assert "電子証明書が提示されませんでした" in refused(page)
        shot(page, "q2-other-pc-refused")
    with chromium_on(pc1, front, "alice") as page:  # Q6: alice's certificate with bob's login ID
        login(page, front, "bob")
        assert "入力されたログインIDのものではありません" in refused(page)
        shot(page, "q6-someone-elses-certificate-refused")


def logged_in(page, login_id: str) -> None:
    assert page.url.endswith("/home"), page.content()[:2000]
    assert f"ようこそ {login_id} さん" in page.inner_text("h1")


def test_q7_two_users_certificates_on_one_pc(bank, front, tmp_path):
    pc = Pc(tmp_path / "shared-pc")
    alice, bob = enrol(pc, front, "alice"), enrol(pc, front, "bob")
    assert {c.subject.rfc4514_string().split(",")[0] for c in pc.certificates()} == {"CN=alice", "CN=bob"}
    for user, row in (("alice", alice), ("bob", bob)):
        with chromium_on(pc, front, user) as page:
            login(page, front, user)
            logged_in(page, user)
            assert page.inner_text("#serial") == row["serial"]
            shot(page, f"q7-{user}-on-the-shared-pc")


def test_q3_id_password_refused_once_the_organisation_uses_certificates(bank, front, tmp_path):
    pc = Pc(tmp_path / "pc")
    with chromium_on(pc, front, None) as page:
        login(page, front, "alice", method="id_password")
        assert "「ID・パスワード方式」ではログインできません" in refused(page)
        shot(page, "q3-id-password-refused")
        login(page, front, "jiro", method="id_password")  # an organisation on id_password: any PC
        logged_in(page, "jiro")
        assert "ID・パスワード方式" in page.inner_text("main")


def test_q8_notice_on_screen_and_by_email_then_renew(bank, front, tmp_path, clock, test_env):
    pc = Pc(tmp_path / "pc")
    first = enrol(pc, front, "alice")
    smtp = SmtpServer()
    smtp.start()
    try:
        clock.travel(days=330)  # the bank's clock, and the PC's (faketime) below: 35 days left
        front.set_clock(330)
        mail = {"CA_SMTP_PORT": str(smtp.port)}
        assert "1 notices created, 1 emails queued" in run_cli("notices", "scan", env=test_env.env(**mail)).stdout
        run_worker_burst(test_env, **mail)
        message = wait_for(lambda: smtp.messages and smtp.messages[0], timeout=30)
        assert message["To"] == "alice@example.jp" and "電子証明書" in message["Subject"]
    finally:
        smtp.stop()
    with chromium_on(pc, front, "alice", days=330) as page:
        login(page, front, "alice")
        logged_in(page, "alice")
        notice = page.inner_text("#notices")
        assert "電子証明書の有効期限は" in notice and "あと" in notice and "ca-enroll renew" in notice
        shot(page, "q8-notice-after-login")
    renewed = pc.run("renew", *front.enroll_args(), days=330)
    assert renewed.returncode == 0 and "電子証明書を更新しました" in renewed.stdout, renewed.stderr
    [row] = json.loads(pc.run("status", "--json", days=330).stdout)
    assert row["serial"] != first["serial"] and row["state"] == "valid"
    with chromium_on(pc, front, "alice", days=330) as page:
        login(page, front, "alice")
        logged_in(page, "alice")
        assert page.inner_text("#serial") == row["serial"]
        assert page.inner_text("#notices").strip() == ""
        shot(page, "q8-renewed-no-notice")


def test_q10_after_expiry_reinstall(bank, front, tmp_path, clock):
    pc = Pc(tmp_path / "pc")
    first = enrol(pc, front, "alice")
    clock.travel(days=370)  # a year and more: expired, on the bank's clock and the PC's
    front.set_clock(370)
    [row] = json.loads(pc.run("status", "--json", days=370).stdout)
    assert row["state"] == "expired" and "有効期限切れ" in pc.run("status", days=370).stdout
    pem = _nss_pem(pc, row["nickname"])
    check = bank.post("/v1/login-checks", json={"login_id": "alice", "method": "certificate", "certificate_pem": pem}).json
    assert (check["allowed"], check["reason"]) == (False, "expired")
    with chromium_on(pc, front, "alice", days=370) as page:
        login(page, front, "alice")
        assert "電子証明書が提示されませんでした" in refused(page)  # Chromium offers no expired certificate
        shot(page, "q10-expired-refused")
    again = enrol(pc, front, "alice", days=370, shot_name="q10-new-code")
    assert again["serial"] != first["serial"]
    with chromium_on(pc, front, "alice", days=370) as page:
        login(page, front, "alice")
        logged_in(page, "alice")
        assert page.inner_text("#serial") == again["serial"]
        shot(page, "q10-login-after-reinstall")


def _nss_pem(pc: Pc, nickname: str) -> str:
    import subprocess

    return subprocess.run(["certutil", "-L", "-d", f"sql:{pc.nssdb}", "-n", nickname, "-a"],
                          capture_output=True, text=True, check=True).stdout  # fmt: skip


def master_revokes(front: FrontEnd, master_pc: Pc, user: str, reason: str, shot_prefix: str) -> None:
    """The master's 利用者管理≫電子証明書の失効, in the front end (acting_login_id = the master)."""
    with chromium_on(master_pc, front, "hanako") as page:
        login(page, front, "hanako")
        logged_in(page, "hanako")
        page.click("#revocation-menu")
        page.wait_for_selector("#users")
        listed = page.inner_text("#users")
        assert user in listed and "hanako" not in listed  # general users only: a master's is paper
        shot(page, f"{shot_prefix}-master-list")
        page.select_option(f"#user-{user} select", reason)
        page.click(f"#revoke-{user}")
        page.wait_for_selector("#done")
        shot(page, f"{shot_prefix}-master-revoked")


def test_q12_master_revokes_a_general_user_who_reinstalls(bank, front, tmp_path):
    user_pc, master_pc = Pc(tmp_path / "bob-pc"), Pc(tmp_path / "hanako-pc")
    first = enrol(user_pc, front, "bob")
    enrol(master_pc, front, "hanako")
    master_revokes(front, master_pc, "bob", "unspecified", "q12")
    details = bank.get(f"/v1/certificates/{first['serial']}").json
    assert details["status"] == "revoked" and details["revocation_reason"] == "unspecified"
    with chromium_on(user_pc, front, "bob") as page:
        login(page, front, "bob")
        assert "失効しています" in refused(page)
        shot(page, "q12-revoked-refused")
    again = enrol(user_pc, front, "bob")
    with chromium_on(user_pc, front, "bob") as page:
        login(page, front, "bob")
        logged_in(page, "bob")
        assert page.inner_text("#serial") == again["serial"]
        shot(page, "q12-login-after-reinstall")


def test_q13_new_pc_after_the_masters_revocation(bank, front, tmp_path):
    old_pc, new_pc, master_pc = Pc(tmp_path / "old-pc"), Pc(tmp_path / "new-pc"), Pc(tmp_path / "hanako-pc")
    enrol(old_pc, front, "alice")
    enrol(master_pc, front, "hanako")
    r = new_pc.run("enroll", *front.enroll_args(), "--login-id", "alice", "--code-stdin", stdin=_code(bank, "alice"))
    assert r.returncode == 7, r.stderr  # not before the old PC's certificate is revoked
    master_revokes(front, master_pc, "alice", "cessation_of_operation", "q13")
    new = enrol(new_pc, front, "alice", shot_name="q13-new-pc-code")
    with chromium_on(old_pc, front, "alice") as page:
        login(page, front, "alice")
        assert "失効しています" in refused(page)
        shot(page, "q13-old-pc-refused")
    with chromium_on(new_pc, front, "alice") as page:
        login(page, front, "alice")
        logged_in(page, "alice")
        assert page.inner_text("#serial") == new["serial"]
        shot(page, "q13-new-pc-admitted")


def _code(bank: Api, login_id: str) -> str:
    r = bank.post(f"/v1/users/{login_id}/enrolment-codes", json={})
    assert r.status == 201, r
    return str(r.json["code"])


def test_q9_the_expiry_date_is_the_same_everywhere(bank, front, tmp_path):
    pc = Pc(tmp_path / "pc")
    row = enrol(pc, front, "alice")
    api_after = bank.get(f"/v1/certificates/{row['serial']}").json["not_after"]
    certutil_after = pc.not_after_in_certutil(row["nickname"])  # NSS's own reading, in UTC
    from datetime import datetime

    as_utc = datetime.strptime(certutil_after, "%a %b %d %H:%M:%S %Y")
    assert as_utc.strftime("%Y-%m-%dT%H:%M:%SZ") == api_after == row["not_after"]
    status_text = pc.run("status").stdout
    assert row["not_after_jst"] in status_text and "（日本時間）" in row["not_after_jst"]
    with chromium_on(pc, front, "alice") as page:
        login(page, front, "alice")
        logged_in(page, "alice")
        assert page.inner_text("#not-after") + "（日本時間）" == row["not_after_jst"]
        shot(page, "q9-expiry-after-login")
    hours = re.search(r"(\d\d):\d\d:\d\d（", row["not_after_jst"])
    assert hours and (int(hours.group(1)) - as_utc.hour) % 24 == 9  # Japan time is UTC+9
