"""Issue 26, findings 10 and 9 in the console: a `next` with CR/LF after login (it answered 500)
redirects safely to /console/; bidi controls in stored names are neutralised when rendered."""

from __future__ import annotations

import pytest

from ca_service.api.app import create_app
from tests.console.test_console_app import Console
from tests.support.console import csrf_of, fresh_otp, make_operator


@pytest.fixture
def app(ctx):
    return create_app(ctx)


@pytest.mark.parametrize(
    "target",
    ["/console/users\r\nSet-Cookie: evil=1", "/console/\nLocation: https://evil.example/", "/console/x\ry", "/console/\x00"],
)
def test_a_next_with_control_characters_redirects_to_the_console(ctx, app, target):
    creds = make_operator(ctx, f"nextop{len(target)}")  # a fresh account each: its TOTP step is unused
    browser = Console(app)
    page = browser.client.get("/console/login", query_string={"next": target})
    assert page.status_code == 200
    form = {"csrf_token": csrf_of(page.text), "username": creds.username, "password": creds.password,
            "otp": fresh_otp(creds), "next": target}  # fmt: skip
    r = browser.client.post("/console/login", data=form)
    assert r.status_code == 302, r.status_code
    assert r.headers["Location"] in ("/console/", "http://localhost/console/"), r.headers
    assert "evil" not in str(r.headers)
