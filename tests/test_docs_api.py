"""Issue 27 §5: the README links only what a clone has, and docs/api.md (the API contract in this
repository) lists every problem code the OpenAPI document can answer."""

from __future__ import annotations

import re
from pathlib import Path

from ca_service.api import problem_codes

ROOT = Path(__file__).parents[1]


def test_the_readme_links_only_files_in_the_repository():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    targets = [t.split("#", 1)[0] for t in re.findall(r"\]\(([^)]+)\)", readme) if not t.startswith(("http", "#"))]
    assert "docs/api.md" in targets
    assert [t for t in targets if not (ROOT / t).exists()] == []  # no ../shared/DESIGN.md


def test_docs_api_lists_every_problem_code_of_the_openapi_document():
    text = (ROOT / "docs" / "api.md").read_text(encoding="utf-8")
    tables = [problem_codes.COMMON, *problem_codes.BY_OPERATION.values()]
    codes = {code for by_status in tables for listed in by_status.values() for code in listed}
    assert sorted(c for c in codes if f"`{c}`" not in text) == []
