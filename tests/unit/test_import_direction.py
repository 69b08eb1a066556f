"""The layering of docs/architecture.md, checked over the source: every import statement of every
module (also those inside functions), except imports for the type checker only
(`if TYPE_CHECKING:`). A new import that breaks a rule fails here, naming the file and line."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# package (path prefix, "/" separated) -> module prefixes it must not import
RULES: dict[str, tuple[str, ...]] = {
    "ca_service/api/": ("sqlalchemy", "ca_service.store", "workers"),
    "ca_service/console/": ("sqlalchemy", "ca_service.store", "ca_service.outbox", "ca_service.cli", "workers"),
    "ca_service/services/": ("sqlalchemy", "ca_service.api", "ca_service.console", "ca_service.cli", "workers"),
    "ca_service/outbox/": ("sqlalchemy", "ca_service.services", "ca_service.api", "ca_service.cli", "workers"),
    "ca_service/store/": (
        "ca_service.services", "ca_service.outbox", "ca_service.context", "ca_service.api", "ca_service.cli",
        "ca_service.pki", "flask", "redis", "rq", "workers",
    ),
    "ca_service/pki/": (
        "ca_service.services", "ca_service.store", "ca_service.outbox", "ca_service.context", "ca_service.api",
        "ca_service.cli", "config", "flask", "sqlalchemy", "redis", "rq", "workers",
    ),
    "ca_service/context.py": ("ca_service.services", "ca_service.api", "ca_service.cli", "ca_service.outbox", "workers"),
    "ca_service/errors.py": ("ca_service", "sqlalchemy", "flask"),
    "ca_service/metrics_collectors.py": ("sqlalchemy", "ca_service.store"),
    "workers/": ("sqlalchemy", "ca_service.store", "ca_service.api"),
    # the user's PC's app and the bank's example front end are clients: nothing of the CA's server
    "ca_enroll/": ("ca_service", "config", "workers", "flask", "sqlalchemy", "redis", "rq"),
    "examples/": ("ca_service", "config", "workers", "ca_enroll", "sqlalchemy", "redis", "rq"),
}  # fmt: skip


def _type_checking_only(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(tree: ast.AST) -> list[tuple[int, str]]:
    found: list[tuple[int, str]] = []

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _type_checking_only(node):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module))
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return found


def _violations() -> list[str]:
    problems = []
    for path in sorted(p for top in ("ca_service", "workers", "ca_enroll", "examples") for p in ROOT.joinpath(top).rglob("*.py")):
        rel = path.relative_to(ROOT).as_posix()
        forbidden = [prefix for package, prefixes in RULES.items() if rel.startswith(package) for prefix in prefixes]
        if not forbidden:
            continue
        for line, module in _imports(ast.parse(path.read_text(), rel)):
            for prefix in forbidden:
                if module == prefix or module.startswith(prefix + "."):
                    problems.append(f"{rel}:{line} imports {module} ({prefix} is not allowed there)")
    return problems


def test_every_layer_imports_only_downwards():
    assert _violations() == []


@pytest.mark.parametrize(
    ("source", "module"),
    [
        ("from sqlalchemy import select", "sqlalchemy"),
        ("import ca_service.services.audit.trail", "ca_service.services.audit.trail"),
    ],
)
def test_the_checker_sees_imports_anywhere_but_type_checking_blocks(source, module):
    tree = ast.parse(f"def f():\n    {source}\nif TYPE_CHECKING:\n    import flask\n")
    assert _imports(tree) == [(2, module)]
