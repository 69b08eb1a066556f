"""Schemathesis against /openapi.json of a real gunicorn: no 5xx, every response matches the
documented status codes, content types and schemas. Run as each role so the role-restricted
operations are exercised past authentication."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

CHECKS = "not_a_server_error,response_schema_conformance,status_code_conformance,content_type_conformance"


@pytest.mark.parametrize("role", ["operator", "frontend"])
def test_schemathesis_finds_no_server_error_or_schema_violation(live, role, tmp_path):
    live.org("acme")
    live.user("alice", "acme")
    st = Path(sys.executable).parent / "schemathesis"
    proc = subprocess.run(
        [
            str(st), "run", f"{live.base_url}/openapi.json",
            "-H", f"Authorization: Bearer {live.tokens[role]}",
            "--checks", CHECKS,
            "--max-examples", "15", "--seed", "20261125",
            "--phases", "coverage,fuzzing",
            "--request-timeout", "30",
        ],
        capture_output=True, text=True, timeout=600, check=False, cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-2000:]
    assert "0 failures" in proc.stdout or "No issues found" in proc.stdout or "passed" in proc.stdout, proc.stdout[-2000:]
