"""One error table (ca_service/errors.py): every problem code the code raises is in it, under a kind
of the status it is served with; every code in it is raised somewhere; the OpenAPI document and
the API's answers give each code the table's status (ca-rollover-required was documented 409 in
the OpenAPI document and served 503)."""

from __future__ import annotations

import ast
import importlib
import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from flask import Flask

from ca_service import errors
from ca_service.api import problems
from ca_service.errors import PROBLEMS, ServiceError, status_for
from ca_service.pki.csr import CSRRejected
from ca_service.store.errors import Unavailable as DatabaseUnavailable
from tests.support.pki import make_csr

ROOT = Path(__file__).parents[1]
PACKAGES = ("ca_service", "workers")
SKIPPED = ("ca_service/store/migrations/",)  # alembic's env.py runs only under alembic
# code=<not a literal>: the one place a code is passed on, with where its values are raised
PASSED_ON = {("ca_service/services/certificates/issuance.py", "exc.code"): CSRRejected}


@dataclass(frozen=True)
class Raised:
    code: str
    kind: type[ServiceError]
    where: str


def _modules() -> Iterator[tuple[str, ModuleType, ast.Module]]:
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            relative = path.relative_to(ROOT).as_posix()
            if relative.startswith(SKIPPED) or path.name == "__main__.py":
                continue
            name = ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
            yield relative, importlib.import_module(name), ast.parse(path.read_text(encoding="utf-8"))


def _resolve(module: ModuleType, node: ast.expr) -> object:
    """What a callee names in its module (`Conflict`, `errors.Conflict`, `codes.X`); None if unknown."""
    if isinstance(node, ast.Name):
        return getattr(module, node.id, None)
    if isinstance(node, ast.Attribute):
        owner = _resolve(module, node.value)  # a module or a class: never a proxy like flask.g
        return getattr(owner, node.attr, None) if isinstance(owner, ModuleType | type) else None
    return None


def _literal(node: ast.expr | None) -> str | None:
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None


@cache
def raised_codes() -> tuple[list[Raised], list[str]]:
    """Every (code, kind) the source raises: `Kind(..., code="...")` and `Kind(...)` calls (the
    kind's own code), class-level `code = "..."` of every ServiceError subclass, and the CSR codes
    (`CSRRejected("code", ...)`, raised on as InvalidInput). Also what cannot be told apart: a
    literal `code=` given to a callee the test cannot resolve, or a non-literal `code=`."""
    found: list[Raised] = []
    unknown: list[str] = []
    classes: set[type[ServiceError]] = set()
    for relative, module, tree in _modules():
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            where = f"{relative}:{node.lineno}"
            callee = _resolve(module, node.func)
            given = next((kw.value for kw in node.keywords if kw.arg == "code"), None)
            if callee is CSRRejected and node.args and _literal(node.args[0]):
                found.append(Raised(str(_literal(node.args[0])), errors.InvalidInput, where))
            elif isinstance(callee, type) and issubclass(callee, ServiceError):
                classes.add(callee)
                if given is None:
                    found.append(Raised(callee.code, callee, where))
                elif _literal(given) is not None:
                    found.append(Raised(str(_literal(given)), callee, where))
                elif (relative, ast.unparse(given)) not in PASSED_ON:
                    unknown.append(f"{where}: {ast.unparse(node)[:120]}")
            elif callee is None and _literal(given) is not None:
                unknown.append(f"{where}: {ast.unparse(node)[:120]} (callee not resolved)")
        for value in vars(module).values():
            if isinstance(value, type) and issubclass(value, ServiceError) and value.__module__ == module.__name__:
                classes.add(value)
    for cls in classes:
        found.append(Raised(cls.code, cls, f"{cls.__module__}.{cls.__qualname__}"))
    return found, unknown


def test_every_raised_code_is_in_the_table_under_its_kind_and_status() -> None:
    found, unknown = raised_codes()
    assert unknown == [], "a code the test cannot check: give a literal code to an error class"
    assert len({r.code for r in found}) > 50 and len(found) > 100  # the scan sees the source
    missing = sorted({f"{r.code} ({r.where})" for r in found if r.code not in PROBLEMS})
    assert missing == [], "raised but not in errors.PROBLEMS (and so not documented)"
    wrong = sorted(
        f"{r.code}: raised as {r.kind.__name__} ({r.kind.status}) at {r.where}, "
        f"listed under {PROBLEMS[r.code].__name__} ({PROBLEMS[r.code].status})"
        for r in found
        if r.code in PROBLEMS and (r.kind.status != PROBLEMS[r.code].status or not issubclass(r.kind, PROBLEMS[r.code]))
    )
    assert wrong == []


def test_every_code_of_the_table_is_raised_or_answered_by_the_web_layer() -> None:
    found, _unknown = raised_codes()
    raised = {r.code for r in found}
    answered = set(problems._HTTP_CODES.values()) | set(re.findall(r'"([a-z]+(?:-[a-z]+)+)"', _source(problems)))
    assert sorted(set(PROBLEMS) - raised - answered) == []
    assert sorted(set(errors.HTTP_ONLY) - answered) == []
    assert set(PROBLEMS).isdisjoint(errors.HTTP_ONLY)


def test_werkzeugs_errors_get_the_tables_status() -> None:
    assert problems._HTTP_CODES[413] == "payload-too-large" and problems._HTTP_CODES[415] == "unsupported-media-type"
    assert all(status_for(code) == status for status, code in problems._HTTP_CODES.items())


def _source(module: ModuleType) -> str:
    return Path(str(module.__file__)).read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def raising_app() -> Flask:
    """The API's error handlers alone, with a view that raises any code under its table kind."""
    app = Flask(__name__)
    problems.register(app)

    @app.get("/raise/<code>")
    def _raise(code: str) -> str:
        raise PROBLEMS[code]("raised by the test", code=code)

    return app


@pytest.mark.parametrize("code", sorted(PROBLEMS))
def test_the_api_serves_each_code_with_the_tables_status(raising_app: Flask, code: str) -> None:
    response = raising_app.test_client().get(f"/raise/{code}")
    assert response.mimetype == "application/problem+json"
    assert (response.status_code, response.get_json()["code"]) == (status_for(code), code)


def test_the_database_being_down_is_an_unavailable_kind() -> None:
    down = DatabaseUnavailable("connection refused")
    assert isinstance(down, errors.Unavailable) and down.status == 503 and down.code == "database-unavailable"


def _documented(document: dict[str, Any]) -> Iterator[tuple[str, str, str]]:
    for path, item in document["paths"].items():
        for method, operation in item.items():
            for status, response in operation.get("responses", {}).items():
                _, _, listed = response.get("description", "").partition("Problem codes: ")
                for code in filter(None, listed.split(", ")):
                    yield f"{method.upper()} {path}", status, code


def test_the_openapi_document_lists_each_code_under_the_status_it_is_served_with(api) -> None:
    document = api.get("/openapi.json", role=None).json
    listed = list(_documented(document))
    assert len(listed) > 100
    unknown = sorted({code for _op, _status, code in listed if code not in PROBLEMS and code not in errors.HTTP_ONLY})
    assert unknown == []
    misplaced = sorted(
        f"{op} {status}: {code} (served {status_for(code)})" for op, status, code in listed if status != str(status_for(code))
    )
    assert misplaced == []
    rollover = {status for op, status, code in listed if code == "ca-rollover-required"}
    assert rollover == {"503"}  # an operator must roll the issuing CA over: nothing the client can change


def test_an_issuing_ca_ending_before_a_new_certificate_would_answers_503_ca_rollover_required(api, clock) -> None:
    """Served as the OpenAPI document says: an operator must roll the issuing CA over (DESIGN §3)."""
    api.org("acme")
    api.user("alice", "acme")
    clock.travel(days=9 * 365 + 200)  # the issuing CA (10 years) has less than a client certificate's year left
    refused = api.issue("alice", make_csr()[1])
    assert (refused.status, refused.json["code"]) == (503, "ca-rollover-required"), refused
