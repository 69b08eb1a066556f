"""One small client interface over the Flask test client and over real HTTP (gunicorn)."""

from __future__ import annotations

import json as jsonlib
from dataclasses import dataclass
from typing import Any

import requests


@dataclass
class Resp:
    status: int
    headers: dict[str, str]
    content: bytes

    @property
    def json(self) -> Any:
        return jsonlib.loads(self.content)

    @property
    def code(self) -> str | None:
        """The problem+json `code`, for error responses."""
        try:
            return self.json.get("code")
        except ValueError:
            return None

    def __repr__(self) -> str:
        return f"<Resp {self.status} {self.content[:300]!r}>"


class Api:
    def __init__(self, tokens: dict[str, str], *, flask_client: Any = None, base_url: str | None = None) -> None:
        self.tokens = tokens
        self.flask_client = flask_client
        self.base_url = base_url
        self.session = requests.Session() if base_url else None

    def request(
        self,
        method: str,
        path: str,
        *,
        role: str | None = "frontend",
        json: Any = None,
        data: bytes | None = None,
        headers: dict[str, str] | None = None,
        params: dict[str, Any] | None = None,
    ) -> Resp:
        hdrs = dict(headers or {})
        if role is not None:
            hdrs.setdefault("Authorization", f"Bearer {self.tokens[role]}")
        if json is not None:
            data = jsonlib.dumps(json).encode()
            hdrs.setdefault("Content-Type", "application/json")
        if self.flask_client is not None:
            r = self.flask_client.open(path, method=method, data=data, headers=hdrs, query_string=params)
            return Resp(r.status_code, dict(r.headers), r.get_data())
        assert self.session is not None
        r = self.session.request(method, self.base_url + path, data=data, headers=hdrs, params=params, timeout=60)
        return Resp(r.status_code, dict(r.headers), r.content)

    def get(self, path: str, **kw: Any) -> Resp:
        return self.request("GET", path, **kw)

    def put(self, path: str, **kw: Any) -> Resp:
        return self.request("PUT", path, **kw)

    def post(self, path: str, **kw: Any) -> Resp:
        return self.request("POST", path, **kw)

    # -- shortcuts for the common set-up steps ------------------------------------------------
    def org(self, org_id: str, login_method: str = "certificate", name: str | None = None) -> Resp:
        r = self.put(
            f"/v1/organizations/{org_id}", role="operator", json={"name": name or org_id.title(), "login_method": login_method}
        )
        assert r.status in (200, 201), r
        return r

    def user(self, login_id: str, org_id: str, role: str = "general", email: str | None = None) -> Resp:
        body = {"org_id": org_id, "role": role, "email": email or f"{login_id}@example.com"}
        if role == "master":  # a master user is a paper procedure (R9): operator + ticket
            body["ticket"] = f"PAPER-{login_id}"
        r = self.put(f"/v1/users/{login_id}", role="operator", json=body)
        assert r.status in (200, 201), r
        return r

    def issue(self, login_id: str, csr_pem: str) -> Resp:
        return self.post(f"/v1/users/{login_id}/certificates", json={"csr": csr_pem})
