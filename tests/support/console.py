"""The operator console under test: operators made through the service, a logged-in
requests.Session or Flask test client (CSRF token read from the page), and TOTP codes."""

from __future__ import annotations

import re
import time
from typing import Any

import pyotp

from ca_service.context import Actor
from ca_service.services.access import operators

ADMIN = Actor(client_name="tests", role="operator")
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def make_operator(ctx: Any, username: str) -> operators.Credentials:
    return operators.create(ctx, ADMIN, username, display_name=username.title())


def fresh_otp(creds: operators.Credentials) -> str:
    """A code for a time step not used yet by this account (a code is accepted once): wait for the
    next step when the current one was used."""
    totp = pyotp.TOTP(creds.totp_secret)
    step = int(time.time()) // 30
    last = _used.get(creds.username)
    if last is not None and last >= step:
        time.sleep(30 - time.time() % 30 + 0.2)
        step = int(time.time()) // 30
    _used[creds.username] = step
    return totp.at(step * 30)


_used: dict[str, int] = {}


def csrf_of(html: str) -> str:
    found = _CSRF.search(html)
    assert found, "no CSRF token on the page"
    return found.group(1)
