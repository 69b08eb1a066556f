"""The FAQ's world for the browser tests: the CA (gunicorn), the reference front end (Flask in
this process) behind its nginx, PCs (a HOME each, whose ~/.pki/nssdb ca-enroll fills) and
Debian's Chromium launched on a PC with the managed policy AutoSelectCertificateForUrls, so
that it presents the PC's certificate for the given login ID without a dialog."""

from __future__ import annotations

import json
import os
import shutil
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from werkzeug.serving import make_server

from examples.frontend.app import create_app
from examples.frontend.ca_api import CaApi
from examples.frontend.passwords import Passwords
from examples.frontend.proxy import FrontendProxy
from tests.support.enroll import Pc
from tests.support.live import free_port

POLICY_DIR = Path("/etc/chromium/policies/managed")
CHROMIUM = shutil.which("chromium")
PASSWORD = "pw-{}-not-secret"
LIBFAKETIME = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1"


class FrontEnd:
    def __init__(self, directory: Path, ca_url: str, token: str, logins: list[str], *, app_port: int | None = None,
                 webhook_secret: str | None = None) -> None:  # fmt: skip
        passwords = directory / "passwords.json"
        directory.mkdir(parents=True, exist_ok=True)
        passwords.write_text(json.dumps({login: PASSWORD.format(login) for login in logins}))
        port = free_port()
        self.url = f"https://localhost:{port}"
        self.app = create_app(CaApi(ca_url, token), Passwords(passwords), public_url=self.url, webhook_secret=webhook_secret)
        app_port = app_port or free_port()
        self.server = make_server("127.0.0.1", app_port, self.app, threaded=True)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        # nginx checks the client certificate's validity on ITS clock: the bank's, moved with the CA's
        # (libfaketime reading an offset file that set_clock writes)
        self.clock_file = directory / "nginx-faketime"
        self.set_clock(0)
        env = {**os.environ, "LD_PRELOAD": LIBFAKETIME, "FAKETIME_TIMESTAMP_FILE": str(self.clock_file), "FAKETIME_NO_CACHE": "1"}
        try:
            self.proxy = FrontendProxy(directory / "nginx", port, f"127.0.0.1:{app_port}", ca_url, env=env)
        except Exception:
            self.server.shutdown()
            raise
        self.port = port
        self.app_url = f"http://127.0.0.1:{app_port}"  # the app itself, behind nginx (the CA's events come here)

    def set_clock(self, days: float) -> None:
        self.clock_file.write_text(f"{days:+g}d\n")

    def enroll_args(self) -> list[str]:
        return ["--server", self.url, "--tls-ca", str(self.proxy.cert)]

    def stop(self) -> None:
        self.proxy.stop()
        self.server.shutdown()


def _executable(pc: Pc, days: float) -> str:
    """Chromium, or Chromium under faketime when the PC's clock is `days` on (like the bank's)."""
    assert CHROMIUM is not None
    if not days:
        return CHROMIUM
    wrapper = pc.home.parent / f"chromium-{days:+g}d.sh"
    wrapper.write_text(f'#!/bin/sh\nexec faketime -f "{days:+g}d" {CHROMIUM} "$@"\n')
    wrapper.chmod(0o755)
    return str(wrapper)


@contextmanager
def chromium_on(pc: Pc, front: FrontEnd, login_id: str | None, *, days: float = 0) -> Iterator[Any]:
    """A fresh Chromium ("close every browser" after installing, FAQ Q10) on this PC. With
    `login_id`, the policy auto-selects that user's certificate for the front end's URL."""
    from playwright.sync_api import sync_playwright

    policy = POLICY_DIR / f"ca-enroll-faq-{front.port}.json"
    entries = []
    if login_id is not None:
        entries.append(json.dumps({"pattern": f"https://localhost:{front.port}", "filter": {"SUBJECT": {"CN": login_id}}}))
    POLICY_DIR.mkdir(parents=True, exist_ok=True)
    policy.write_text(json.dumps({"AutoSelectCertificateForUrls": entries}))
    pc.home.mkdir(parents=True, exist_ok=True)
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(
                executable_path=_executable(pc, days),
                args=["--no-sandbox", "--disable-dev-shm-usage"],
                env={**os.environ, "HOME": str(pc.home)},
            )
            context = browser.new_context(locale="ja-JP", viewport={"width": 1100, "height": 760}, ignore_https_errors=True)
            try:
                yield context.new_page()
            finally:
                context.close()
                browser.close()
    finally:
        policy.unlink(missing_ok=True)
