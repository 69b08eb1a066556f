"""Issue 26, findings 10 and 9 in the console: a `next` with CR/LF after login (it answered 500)
redirects safely to /console/; bidi controls in stored names are neutralised when rendered."""

from __future__ import annotations

import pytest
from sqlalchemy import insert, update

from ca_service.api.app import create_app
from ca_service.store.models import Operator, Organization, User
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


BIDI = "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u061c"


def test_bidi_controls_in_stored_names_are_neutralised_on_every_page(ctx, app):
    """Data stored before the API refused them (or written by hand): the pages never carry them."""
    now = ctx.clock.now()
    with ctx.engine.begin() as conn:
        conn.execute(
            insert(Organization).values(
                org_id="acme", name="ACME\u202egnp.exe", login_method="certificate", created_at=now, updated_at=now
            )
        )
        conn.execute(
            insert(User).values(
                login_id="alice", org_id="acme", role="general", display_name="山田\u2067太郎\u2069\u200f",
                created_at=now, updated_at=now,
            )
        )  # fmt: skip
    creds = make_operator(ctx, "bidiviewer")
    with ctx.engine.begin() as conn:
        conn.execute(update(Operator).where(Operator.username == "bidiviewer").values(display_name="Help\u202edesk"))
    browser = Console(app, creds)
    for path in ("/console/organizations/acme", "/console/users/alice", "/console/?q=alice", "/console/?q=acme",
                 "/console/users/alice/role", "/console/organizations/acme/login-method"):  # fmt: skip
        r = browser.get(path)
        assert r.status_code == 200, (path, r.status_code)
        assert "太郎" in r.text or "ACME" in r.text, path
        assert not set(BIDI) & set(r.text), (path, sorted(f"U+{ord(c):04X}" for c in set(BIDI) & set(r.text)))
