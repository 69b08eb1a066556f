"""Finding 12 (issue 26): JSON login IDs accepted a trailing "\\n" (a `$` that matches before a
final newline under Python's `re`, where a full match was meant). Every endpoint that takes a
login ID or an organisation ID answers 400 validation-error naming the field for "alice\\n"."""

from __future__ import annotations

from urllib.parse import quote

import pytest

from ca_service.errors import InvalidInput
from ca_service.services.access import operators
from tests.conftest import SYSTEM
from tests.support.pki import make_csr

BAD = "alice\n"


@pytest.fixture
def acme(api):
    api.org("acme")
    api.user("alice", "acme")
    return api


def _refused(r, field: str) -> None:
    assert r.status == 400 and r.code == "validation-error", r
    assert field in [e["field"] for e in r.json["errors"]], r.json


def test_json_and_query_login_and_org_ids_with_a_trailing_newline_are_refused(acme):
    api = acme
    serial = api.issue("alice", make_csr()[1]).json["serial"]
    _refused(api.post("/v1/login-checks", json={"login_id": BAD, "method": "id_password"}), "login_id")
    _refused(
        api.post(f"/v1/certificates/{serial}/revocation", json={"reason": "unspecified", "acting_login_id": BAD}),
        "acting_login_id",
    )
    _refused(api.put("/v1/users/bob", role="operator", json={"org_id": "acme\n", "role": "general"}), "org_id")
    _refused(api.get("/v1/certificates", role="operator", params={"login_id": BAD}), "login_id")
    _refused(api.get("/v1/certificates", role="operator", params={"org_id": "acme\n"}), "org_id")
    _refused(api.get("/v1/certificates", role="operator", params={"cursor": "c1ab\n"}), "cursor")
    body = {"org_id": "acme", "role": "general", "email": "b@bank.example\n"}
    _refused(api.put("/v1/users/bob", role="operator", json=body), "email")
    assert api.get("/v1/users/bob", role="operator").status == 404  # nothing was written


@pytest.mark.parametrize(
    "path",
    [
        "/v1/users/{login}",
        "/v1/users/{login}/notices",
        "/v1/organizations/{org}",
    ],
)
def test_path_ids_with_a_trailing_newline_are_refused(acme, path):
    r = acme.get(path.format(login=quote(BAD), org=quote("acme\n")), role="operator" if "notices" not in path else "frontend")
    assert r.status == 400 and r.code == "validation-error", r


def test_path_ids_with_a_trailing_newline_are_refused_on_writes(acme):
    api = acme
    _refused(api.put(f"/v1/users/{quote(BAD)}", role="operator", json={"org_id": "acme", "role": "general"}), "login_id")
    _refused(api.put(f"/v1/organizations/{quote('acme2' + chr(10))}", role="operator", json={"name": "x"}), "org_id")
    _refused(api.post(f"/v1/users/{quote(BAD)}/certificates", json={"csr": make_csr()[1]}), "login_id")
    r = api.post(f"/v1/organizations/{quote('acme' + chr(10))}/login-method", role="operator",
                 json={"login_method": "id_password", "ticket": "HD-1"})  # fmt: skip
    _refused(r, "org_id")


def test_an_operator_username_with_a_trailing_newline_is_refused(ctx):
    with pytest.raises(InvalidInput):
        operators.create(ctx, SYSTEM, "op1\n")
