"""Issue 25's last part in real Chromium: the help desk revokes a logged-in user's certificate
through the CA's API; the CA's real rq worker (`ca-service worker --queues webhooks`) delivers the
signed `certificate.revoked` to the reference front end (examples/frontend/ca_events.py, verified
with `standardwebhooks`), which ends the sessions of that serial; the user's next page view, on the
SAME TLS connection (the one that presented the certificate: nginx's access log numbers the
connections), is the login screen. Reuses the FAQ's world (tests/support/faq_browser.py)."""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterator

import pytest
import requests

from tests.e2e.test_faq_browser import enrol, logged_in, login
from tests.support.api import Api
from tests.support.background import wait_for
from tests.support.enroll import Pc
from tests.support.faq_browser import CHROMIUM, POLICY_DIR, FrontEnd, chromium_on
from tests.support.live import free_port
from tests.support.webhook_receiver import new_secret
from tests.support.workers import empty_queues

pytest.importorskip("playwright.sync_api")
# the FAQ's group: one managed certificate policy at a time (Chromium takes AutoSelectCertificateForUrls
# from one of several policy files, so two front ends' tests side by side get a certificate dialog)
pytestmark = [pytest.mark.browser, pytest.mark.xdist_group("faq-browser")]
SECRET = new_secret()
LINE = re.compile(r'conn=(\d+) req=(\d+) "(\S+) (\S+) [^"]*" (\d+)')


@pytest.fixture(scope="module")
def world(live_processes, tokens, tmp_path_factory) -> Iterator[tuple[str, FrontEnd, dict[str, str]]]:
    if CHROMIUM is None:
        pytest.skip("Debian's chromium is not installed (apt-get install chromium)")
    if not os.access(POLICY_DIR if POLICY_DIR.exists() else POLICY_DIR.parent.parent, os.W_OK):
        pytest.skip(f"{POLICY_DIR} is not writable (the managed policy needs root)")
    app_port = free_port()  # the CA must know the receiver's URL before the front end (which needs the CA) starts
    hooks = {
        "CA_WEBHOOK_URLS": f"http://127.0.0.1:{app_port}/ca-events",  # the app itself: loopback http, not via nginx
        "CA_WEBHOOK_SECRET": SECRET,
        "CA_WEBHOOK_TIMEOUT_SECONDS": "3",
        "CA_WEBHOOK_RETRY_FIRST_SECONDS": "1",
        "CA_WEBHOOK_RETRY_MAX_SECONDS": "1",
    }
    api_url = live_processes.start_api(workers=2, name="events-api", CA_TRUSTED_PROXIES="127.0.0.1/32", **hooks)
    front = FrontEnd(tmp_path_factory.mktemp("events-front"), api_url, tokens["frontend"], ["alice"],
                     app_port=app_port, webhook_secret=SECRET)  # fmt: skip
    yield api_url, front, hooks
    front.stop()


def _log_lines(front: FrontEnd, start: int) -> list[tuple[int, int, str, str, int]]:
    """nginx's access log since byte `start`: (connection number, request number on it, method, path, status)."""
    text = (front.proxy.dir / "access.log").read_bytes()[start:].decode(errors="replace")
    return [(int(m[1]), int(m[2]), m[3], m[4], int(m[5])) for m in LINE.finditer(text)]


def test_a_revocation_by_the_help_desk_ends_the_users_session_at_once_on_the_same_tls_connection(
    world, ctx, tokens, live_processes, test_env, tmp_path
):
    api_url, front, hooks = world
    empty_queues(test_env.redis_url)
    bank = Api(tokens, base_url=api_url)
    bank.org("acme", name="アクメ株式会社")
    bank.user("alice", "acme", email="alice@example.jp")
    pc = Pc(tmp_path / "alice-pc")
    alice = enrol(pc, front, "alice")
    store = front.app.extensions["sessions"]
    # the receiver is not reachable from the browser's side: nginx answers 404 for it
    assert requests.post(front.url + "/ca-events", data=b"{}", verify=str(front.proxy.cert), timeout=10).status_code == 404
    log_start = (front.proxy.dir / "access.log").stat().st_size
    worker = None
    try:
        with chromium_on(pc, front, "alice") as page:
            login(page, front, "alice")
            logged_in(page, "alice")
            assert page.inner_text("#serial") == alice["serial"]
            [sid] = [c["value"] for c in page.context.cookies() if c["name"] == "bank_session"]
            revoked = bank.post(f"/v1/certificates/{alice['serial']}/revocation", role="operator",
                                json={"reason": "key_compromise"})  # fmt: skip
            assert revoked.status in (200, 201), revoked
            # no webhook worker runs yet: the CA knows, the front end does not, and alice is still in
            page.goto(front.url + "/home")
            logged_in(page, "alice")
            before = _log_lines(front, log_start)
            # the worker serving the `webhooks` queue delivers certificate.issued, then .revoked
            worker = live_processes.start(f"events-worker-{time.monotonic_ns()}", ["worker", "--queues", "webhooks"], **hooks)
            started = time.monotonic()
            wait_for(lambda: store.get(sid) is None, timeout=30)  # bounded poll (50 ms steps)
            ended_after = time.monotonic() - started
            page.goto(front.url + "/home")  # alice's next page view
            assert page.url == front.url + "/", page.url
            assert page.locator("#cert-login-id").count() == 1, page.content()[:1500]
    finally:
        if worker is not None:
            worker.stop()
    lines = _log_lines(front, log_start)
    after = lines[len(before) :]
    # the last view: GET /home answered 302 (to the login screen) on a connection that already carried
    # earlier requests of this browser, the login among them: no new TLS handshake, no new login
    home = [line for line in after if line[2:4] == ("GET", "/home")]
    assert home and home[-1][4] == 302, lines
    conn, nth = home[-1][0], home[-1][1]
    logins = [line[0] for line in before if line[2:4] == ("POST", "/login/certificate")]
    assert nth > 1 and logins == [conn], lines  # the very connection alice logged in on
    assert not [line for line in after if line[3].startswith("/login")], lines
    print(f"\nsession ended {ended_after:.1f} s after the webhook worker was started; login on conn={logins}, "
          f"last view on conn={conn} (its request #{nth})")  # fmt: skip
    details = bank.get(f"/v1/certificates/{alice['serial']}").json
    assert details["status"] == "revoked"
