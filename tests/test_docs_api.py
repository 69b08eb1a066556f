"""Issue 27 §5: the README links only what a clone has, and docs/api.md (the API contract in this
repository) lists every problem code the OpenAPI document can answer."""

from __future__ import annotations

import re
from pathlib import Path

from ca_service import errors
from ca_service.api import problem_codes

ROOT = Path(__file__).parents[1]


def test_the_readme_links_only_files_in_the_repository():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    targets = [t.split("#", 1)[0] for t in re.findall(r"\]\(([^)]+)\)", readme) if not t.startswith(("http", "#"))]
    assert "docs/api.md" in targets
    assert [t for t in targets if not (ROOT / t).exists()] == []  # no ../shared/DESIGN.md


def test_docs_api_lists_every_problem_code_of_the_openapi_document():
    text = (ROOT / "docs" / "api.md").read_text(encoding="utf-8")
    codes = {code for listed in [problem_codes.COMMON, *problem_codes.BY_OPERATION.values()] for code in listed}
    assert sorted(c for c in codes if f"`{c}`" not in text) == []


def test_docs_api_lists_each_problem_code_under_the_status_it_is_served_with():
    """The table of docs/api.md's "Problem codes" (`| 413 / 415 | codes |`) against the error table:
    ca-rollover-required was documented 409 and served 503."""
    text = (ROOT / "docs" / "api.md").read_text(encoding="utf-8").split("## Problem codes", 1)[1]
    rows = re.findall(r"^\| ([0-9 /]+) \| (.*) \|$", text, re.MULTILINE)
    assert len(rows) >= 8
    misplaced = [
        (code, statuses.strip(), errors.status_for(code))
        for statuses, cells in rows
        for code in re.findall(r"`([a-z-]+)`", cells)
        if str(errors.status_for(code)) not in statuses.split(" / ")
    ]
    assert misplaced == []
