"""Login passwords: a FIXTURE. The bank owns its users' passwords (and one-time passwords) in its
own systems; the CA never sees them. This example reads a JSON file {login_id: password}
(FRONTEND_PASSWORDS_FILE, default: demo-passwords.json beside this module)."""

from __future__ import annotations

import hmac
import json
import os
from pathlib import Path

DEFAULT = Path(__file__).with_name("demo-passwords.json")


class Passwords:
    def __init__(self, path: Path | None = None) -> None:
        self.path = path or Path(os.environ.get("FRONTEND_PASSWORDS_FILE") or DEFAULT)

    def check(self, login_id: str, password: str) -> bool:
        stored = json.loads(self.path.read_text()).get(login_id)  # re-read: tests and demos edit it
        return isinstance(stored, str) and hmac.compare_digest(stored.encode(), password.encode())
