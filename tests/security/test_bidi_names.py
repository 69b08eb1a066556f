"""Finding 9 (issue 26): bidi controls (U+202E RIGHT-TO-LEFT OVERRIDE, ...) were accepted in
display names and organisation names, and shown raw in the console ("invoice\\u202Etxt.exe"
reads "invoiceexe.txt"). Refused with 400 validation-error naming the field; the console
neutralises those already stored (tests/console/test_console_hardening.py)."""

from __future__ import annotations

import pytest

from ca_service.errors import InvalidInput
from ca_service.services.access import operators
from tests.conftest import SYSTEM

BIDI = ["\u202a", "\u202b", "\u202c", "\u202d", "\u202e", "\u2066", "\u2067", "\u2068", "\u2069", "\u200e", "\u200f", "\u061c"]


def _refused(r, field: str) -> None:
    assert r.status == 400 and r.code == "validation-error", r
    assert [e["field"] for e in r.json["errors"]] == [field], r.json


@pytest.mark.parametrize("char", BIDI, ids=[f"U+{ord(c):04X}" for c in BIDI])
def test_bidi_controls_are_refused_in_names(api, char):
    _refused(api.put("/v1/organizations/acme", role="operator", json={"name": f"ACME{char}gnp.exe"}), "name")
    assert api.get("/v1/organizations/acme", role="operator").status == 404
    assert api.put("/v1/organizations/acme", role="operator", json={"name": "ACME 銀行"}).status == 201
    body = {"org_id": "acme", "role": "general", "display_name": f"山田{char}太郎"}
    _refused(api.put("/v1/users/alice", role="operator", json=body), "display_name")
    ticket = {"login_method": "id_password", "ticket": f"HD{char}1"}
    _refused(api.post("/v1/organizations/acme/login-method", role="operator", json=ticket), "ticket")
    assert api.get("/v1/users/alice", role="operator").status == 404


def test_an_operator_display_name_with_a_bidi_control_is_refused(ctx):
    with pytest.raises(InvalidInput) as refused:
        operators.create(ctx, SYSTEM, "bidiop", display_name="Help\u202edesk")
    assert "display_name" in refused.value.extra["fields"]
