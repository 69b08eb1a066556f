"""The operator console under test: operators made through the service, a logged-in
requests.Session or Flask test client (CSRF token read from the page), and TOTP codes."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import pyotp

from ca_service.context import Actor
from ca_service.services.access import operators
from tests.support.environment import clock_offset_seconds

ADMIN = Actor(client_name="tests", role="operator")
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def make_operator(ctx: Any, username: str) -> operators.Credentials:
    return operators.create(ctx, ADMIN, username, display_name=username.title())


def fresh_otp(creds: operators.Credentials, clock_file: Path | None = None) -> str:
    """A code for a time step not used yet by this account (a code is accepted once). When the
    current step was used: with `clock_file` (the CA_CLOCK_OFFSET_FILE the server under test
    reads) the server's clock is moved on to the next step, else the next step is waited for (up
    to 30 s)."""
    totp = pyotp.TOTP(creds.totp_secret)
    now = time.time() + clock_offset_seconds(clock_file)
    step = int(now) // 30
    last = _used.get(creds.username)
    if last is not None and last >= step:
        ahead = (last + 1) * 30 - now + 0.2
        if clock_file is not None:
            clock_file.write_text(str(clock_offset_seconds(clock_file) + ahead))
        else:
            time.sleep(ahead)
        step = last + 1
    _used[creds.username] = step
    return totp.at(step * 30)


_used: dict[str, int] = {}


def csrf_of(html: str) -> str:
    found = _CSRF.search(html)
    assert found, "no CSRF token on the page"
    return found.group(1)
