"""Figures of the source layout, for the note of a restructuring (issue 22): files and lines per
folder, the largest modules, and the rooms (folders) an issuance passes through.

    python tools/layout_figures.py [ROOT]       # ROOT: a checkout (default: the current directory)
    python tools/layout_figures.py --services-tree [ROOT]   # the listing in docs/architecture.md
    python tools/layout_figures.py --update-architecture    # ... written into docs/architecture.md

"Before" figures come from an older checkout: `git worktree add /tmp/before <commit>` (or
`git archive <commit> | tar -x -C /tmp/before`), then `python tools/layout_figures.py /tmp/before`.

The issuance path is read from the source, not traced: the module that serves POST /certificates
(the one defining the route that calls `issue_certificate`) and the module defining
`issue_certificate`, with the project modules each imports directly (also inside functions).
"""

from __future__ import annotations

import ast
import sys
from collections import Counter
from pathlib import Path

PACKAGES = ("ca_service", "workers", "config")
TOP = 12


def python_files(root: Path) -> list[Path]:
    files = [p for package in PACKAGES for p in (root / package).rglob("*.py")]
    return sorted(p for p in files if "migrations" not in p.parts and "__pycache__" not in p.parts)


def lines_of(path: Path) -> int:
    return len(path.read_text(encoding="utf-8").splitlines())


def module_of(root: Path, path: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def defining(files: list[Path], name: str, under: str) -> Path | None:
    for path in files:
        if under not in path.as_posix():
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        if any(isinstance(node, ast.FunctionDef) and node.name == name for node in tree.body):
            return path
    return None


def calling(files: list[Path], name: str, under: str) -> list[Path]:
    return [p for p in files if under in p.as_posix() and f"{name}(" in p.read_text(encoding="utf-8")]


def project_imports(root: Path, path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            for alias in node.names:
                candidate = f"{node.module}.{alias.name}"
                where = root / Path(*candidate.split("."))
                is_module = where.with_suffix(".py").exists() or (where / "__init__.py").exists()
                found.add(candidate if is_module else node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return {m for m in found if m.split(".")[0] in PACKAGES}


def room(root: Path, module: str) -> str:
    """The folder a module lives in: ca_service.services.audit.trail -> ca_service/services/audit;
    a package is its own folder (ca_service.services.events -> ca_service/services/events)."""
    folder = "/".join(module.split("."))
    if (root / folder / "__init__.py").exists():
        return folder
    return "/".join(module.split(".")[:-1]) or module


def services_tree(root: Path) -> list[str]:
    """ca_service/services/ package by package, each module with its docstring's first line (for
    docs/architecture.md)."""
    out: list[str] = []
    services = root / "ca_service" / "services"
    for package in sorted(p for p in services.iterdir() if (p / "__init__.py").exists()):
        out.append(f"{package.name}/")
        for path in sorted(package.glob("*.py")):
            if path.name == "__init__.py":
                continue
            doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) or ""
            first = doc.split(". ")[0].split("\n\n")[0].replace("\n", " ")
            out.append(f"  {path.stem + '.py':<28} {first[:100]}".rstrip())
    loose = sorted(p.name for p in services.glob("*.py") if p.name != "__init__.py")
    if loose:
        out.append(f"(not in a package: {', '.join(loose)})")
    return out


def update_architecture(root: Path) -> bool:
    """Rewrite the listing between the services-tree markers of docs/architecture.md."""
    doc = root / "docs" / "architecture.md"
    text = doc.read_text(encoding="utf-8")
    start, end = "<!-- services-tree -->\n```\n", "```\n<!-- /services-tree -->"
    head, found, rest = text.partition(start)
    _, found_end, tail = rest.partition(end)
    if not (found and found_end):
        print(f"{doc}: no services-tree markers", file=sys.stderr)
        return False
    new = head + start + "\n".join(services_tree(root)) + "\n" + end + tail
    if new != text:
        doc.write_text(new, encoding="utf-8")
        print(f"{doc}: services listing rewritten")
    return True


def main(argv: list[str]) -> int:
    if argv[1:2] == ["--services-tree"]:
        print("\n".join(services_tree(Path(argv[2] if len(argv) > 2 else ".").resolve())))
        return 0
    if argv[1:2] == ["--update-architecture"]:
        return 0 if update_architecture(Path(argv[2] if len(argv) > 2 else ".").resolve()) else 1
    root = Path(argv[1] if len(argv) > 1 else ".").resolve()
    files = python_files(root)
    per_folder: Counter[str] = Counter()
    lines_per_folder: Counter[str] = Counter()
    for path in files:
        folder = path.parent.relative_to(root).as_posix()
        per_folder[folder] += 1
        lines_per_folder[folder] += lines_of(path)
    print(f"# {root}\n\n## Python files and lines per folder (migrations left out)")
    for folder in sorted(per_folder):
        print(f"  {folder:<40} {per_folder[folder]:>3} files {lines_per_folder[folder]:>6} lines")
    print(f"\n## The {TOP} largest modules")
    for path in sorted(files, key=lines_of, reverse=True)[:TOP]:
        print(f"  {lines_of(path):>5}  {path.relative_to(root).as_posix()}")
    print("\n## An issuance (POST /certificates): the modules it runs through and the rooms they are in")
    service = defining(files, "issue_certificate", "ca_service/services/")
    routes = [p for p in calling(files, "issue_certificate", "ca_service/api/") if p != service]
    rooms: set[str] = set()
    for path in [*routes, *([service] if service else [])]:
        imported = sorted(m for m in project_imports(root, path) if m.startswith("ca_service."))
        rooms.update(room(root, m) for m in imported)
        rooms.add(room(root, module_of(root, path)))
        print(f"  {module_of(root, path)} imports {len(imported)} project modules:")
        for module in imported:
            print(f"      {module}")
    print(f"  rooms: {len(rooms)}: {', '.join(sorted(rooms))}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
