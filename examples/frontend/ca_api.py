"""The CA's HTTP API as the front end uses it (DESIGN §4): one bearer token of role `frontend`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import requests


@dataclass
class CaAnswer:
    status: int
    body: Any

    @property
    def code(self) -> str | None:
        return self.body.get("code") if isinstance(self.body, dict) else None


class CaApi:
    def __init__(self, base_url: str, token: str) -> None:
        self.base_url = base_url.rstrip("/")
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {token}"

    def _call(self, method: str, path: str, **kwargs: Any) -> CaAnswer:
        r = self.session.request(method, self.base_url + path, timeout=15, **kwargs)
        try:
            body = r.json()
        except ValueError:
            body = None
        return CaAnswer(r.status_code, body)

    def login_check(self, login_id: str, method: str, certificate_pem: str | None = None) -> CaAnswer:
        body: dict[str, Any] = {"login_id": login_id, "method": method}
        if certificate_pem is not None:
            body["certificate_pem"] = certificate_pem
        return self._call("POST", "/v1/login-checks", json=body)

    def user(self, login_id: str) -> CaAnswer:
        return self._call("GET", f"/v1/users/{login_id}")

    def notices(self, login_id: str) -> CaAnswer:
        return self._call("GET", f"/v1/users/{login_id}/notices")

    def enrolment_code(self, login_id: str) -> CaAnswer:
        return self._call("POST", f"/v1/users/{login_id}/enrolment-codes", json={})

    def active_certificates(self, org_id: str) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        params: dict[str, Any] = {"org_id": org_id, "status": "active", "limit": 100}
        while True:
            answer = self._call("GET", "/v1/certificates", params=params)
            if answer.status != 200:
                return items
            items.extend(answer.body["items"])
            if not answer.body.get("next_cursor"):
                return items
            params["cursor"] = answer.body["next_cursor"]

    def revoke(self, serial: str, reason: str, acting_login_id: str) -> CaAnswer:
        body = {"reason": reason, "acting_login_id": acting_login_id}
        return self._call("POST", f"/v1/certificates/{serial}/revocation", json=body)
