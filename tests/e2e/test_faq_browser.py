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
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.api import Api
from tests.support.enroll import Pc
from tests.support.faq_browser import CHROMIUM, PASSWORD, FrontEnd, chromium_on

pytest.importorskip("playwright.sync_api")
pytestmark = [pytest.mark.browser, pytest.mark.xdist_group("faq-browser")]
SHOTS = Path(os.environ["CA_FAQ_SCREENSHOTS"]) if os.environ.get("CA_FAQ_SCREENSHOTS") else None
LOGINS = ["alice", "bob", "hanako", "jiro"]


@pytest.fixture(scope="module")
def world(live_processes, tokens, tmp_path_factory) -> Iterator[tuple[str, FrontEnd]]:
    if CHROMIUM is None:
        pytest.skip("Debian's chromium is not installed (apt-get install chromium)")
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
def front(world) -> FrontEnd:
    return world[1]


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
    with chromium_on(pc, front, None) as page:
        code = code_from_front_end(page, front, login_id, shot_name)
    r = pc.run("enroll", *front.enroll_args(), "--login-id", login_id, "--code-stdin", stdin=code, days=days)
    assert r.returncode == 0, r.stderr + r.stdout
    rows = json.loads(pc.run("status", "--json", days=days).stdout)
    return next(row for row in rows if row["login_id"] == login_id)


def login(page, front: FrontEnd, login_id: str, *, method: str = "certificate", host: str = "localhost") -> str:
    """The login screen: 「電子証明書方式のお客様」 (certificate + password) or 「ID・パスワード方式」."""
    page.goto(f"https://{host}:{front.port}/")
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
