"""Regroup ca_service/services/ into one package per capability (issue 22), re-runnably.

Run from the repository root, on a clean tree (it uses `git mv`):

    python tools/regroup_services.py            # move + rewrite, print every change
    python tools/regroup_services.py --dry-run  # print what it would do, change nothing

It is idempotent: a module already at its new place is not moved again, and a reference already
spelled the new way is not rewritten again, so it can be run once more on a main that merged
branches written against the old layout (their new references get rewritten, their new modules
are listed). Lines carrying the marker `regroup:keep` are never rewritten (the old RQ job names
the worker still accepts, in ca_service/queueing.py and docs/operations.md).

What it does:
1. `git mv ca_service/services/<old>.py ca_service/services/<package>/<new>.py` for each module of
   MOVES, creating each package's __init__.py.
2. Rewrites, in every text file under REWRITE_ROOTS: import statements (Python files, parsed with
   `ast`, also imports inside functions and under TYPE_CHECKING), dotted names in strings and
   comments (`ca_service.services.tasks.sweep_job`, monkeypatch targets, logger names, RQ job
   names), the short spelling `services.tasks.sweep_job` and paths `services/tasks.py`.
3. Lists the modules of ca_service/services/ it does not know (added by a branch after MOVES was
   written): they stay where they are, for a person to place.
"""

from __future__ import annotations

import argparse
import ast
import difflib
import os
import re
import shutil
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

SERVICES = Path("ca_service/services")
PKG = "ca_service.services"
KEEP_MARKER = "regroup:keep"

# old module (under ca_service/services/) -> new module, relative to ca_service.services.
# "" as the package means "leaves services": the value is then an absolute module.
MOVES: dict[str, str] = {
    # audit: the trail, its signed checkpoints, and the tail every change runs after commit
    "audit": "audit.trail",
    "audit_checkpoints": "audit.checkpoints",
    "post_commit": "audit.post_commit",
    "audit_sink": "audit.checkpoint_file",  # sec branches: checkpoints appended to a file
    # authority: the CA hierarchy and the delegated OCSP responder certificates it issues
    "authorities": "authority.hierarchy",
    "ocsp_signer": "authority.responder_certificates",
    # access: who may call the API and the console
    "clients": "access.clients",
    "operators": "access.operators",
    "auth_throttle": "access.throttle",
    "auth_blocks": "access.blocks",
    "console_login_limits": "access.console_login_limits",  # sec branches
    "dual_control": "access.dual_control",  # sec branches: the rule revocation/registry/approvals share
    # ocsp: answering OCSP and keeping pre-signed answers fresh
    "ocsp_cache": "ocsp.cache",
    "ocsp_invalidation": "ocsp.invalidation",
    "ocsp_responder": "ocsp.responder",
    # crl: publication, the public files, the offline root's ceremony CRL
    "crl_publication": "crl.publication",
    "crl_files": "crl.files",
    "root_crl": "crl.root",
    "crl_overdue": "crl.overdue",  # sec branches: a revocation kept off the CRL
    # certificates: issuance and renewal, revocation and its brake, reading
    "issuance": "certificates.issuance",
    "revocation": "certificates.revocation",
    "revocation_brake": "certificates.revocation_brake",
    "issuance_brake": "certificates.issuance_brake",  # sec branches: the twin of revocation_brake
    "certificates": "certificates.views",
    # notices: the 40-day scan, its texts, the mailer
    "notices": "notices.scan",
    "notice_messages": "notices.texts",
    "mailer": "notices.mailer",
    # registry: organisations and users, their login method, login checks
    "registry": "registry.organisations",
    "login_method": "registry.login_method",
    "login_checks": "registry.login_checks",
    # helpdesk: operators' look-ups, console pages, dual control
    "helpdesk": "helpdesk.lookups",
    "helpdesk_pages": "helpdesk.pages",
    "approvals": "helpdesk.approvals",
    # background: the RQ job functions, the API's job requests, redispatch, health, failed jobs
    "tasks": "background.jobs",
    "jobs": "background.job_requests",
    "redispatch": "background.redispatch",
    "health": "background.health",
    "failed_jobs": "background.failed_jobs",
}
# old modules that leave services: the module is deleted, references go to the absolute target
LEAVES: dict[str, str] = {"context": "ca_service.context"}

PACKAGE_DOCS: dict[str, str] = {
    "audit": "The audit trail, its signed checkpoints, and what every change does after it commits.",
    "authority": "The CA hierarchy and the delegated OCSP responder certificates it issues.",
    "access": "Who may call: API clients and their tokens, console operators, the bad-token throttle.",
    "ocsp": "Answering OCSP (RFC 6960) and keeping each process's pre-signed answers fresh.",
    "crl": "CRL publication, the public CRL files, and the offline root's ceremony CRL.",
    "certificates": "Issuance and renewal, revocation and its brake, reading certificates.",
    "notices": "The 40-day expiry notices: the daily scan, their texts, the mailer.",
    "registry": "Organisations and users, their login method, and the login checks.",
    "helpdesk": "The help desk's look-ups, the console's pages, and dual control (approvals).",
    "background": "The RQ job functions, the API's job requests, redispatch, health, failed jobs.",
}

REWRITE_ROOTS = ("ca_service", "workers", "config", "tests", "bench", "docs", "deploy", "tools", "README.md",
                 "pyproject.toml", ".importlinter", "Makefile", ".ci")  # fmt: skip
TEXT_SUFFIXES = {".py", ".md", ".txt", ".toml", ".ini", ".cfg", ".yaml", ".yml", ".conf", ".sh", ".json", ".j2",
                 ".html", ".rst", ".service", ".env", ""}  # fmt: skip
SKIP_PARTS = {".venv", "__pycache__", ".git", "node_modules", ".mypy_cache", ".ruff_cache", ".pytest_cache"}
SELF = Path("tools/regroup_services.py")

NEW_PACKAGES = {new.split(".")[0] for new in MOVES.values()}
SUBMODULES: dict[str, set[str]] = defaultdict(set)
for _new in MOVES.values():
    SUBMODULES[_new.split(".")[0]].add(_new.split(".", 1)[1])


def target(old: str) -> str:
    """The new absolute module of an old services module."""
    return LEAVES[old] if old in LEAVES else f"{PKG}.{MOVES[old]}"


def _guard(old: str) -> str:
    # an old module whose name is also a new package (audit, certificates, ...): a reference that
    # goes on into one of the package's modules is already new
    subs = SUBMODULES.get(old)
    if not subs:
        return ""
    alternatives = "|".join(sorted(subs))
    # ... or an import statement in text, "from ca_service.services.audit import trail"
    return rf"(?!\.(?:{alternatives})\b)(?! import (?:{alternatives})\b)"


OLD_NAMES = sorted([*MOVES, *LEAVES], key=len, reverse=True)
_alternatives = "|".join(rf"{name}\b{_guard(name)}" for name in OLD_NAMES)
DOTTED = re.compile(rf"(?<![\w.])ca_service\.services\.({_alternatives})")
SHORT = re.compile(rf"(?<![\w./])services\.({_alternatives})")
# services/tasks.py, or services/tasks in prose; but services/audit without .py may be the new package
_BARE = [name for name in OLD_NAMES if name not in NEW_PACKAGES]
PATH = re.compile(rf"(?<![\w.])((?:ca_service/)?)services/(?:({'|'.join(OLD_NAMES)})(\.py)\b|({'|'.join(_BARE)})()\b(?!/))")


def _dotted(match: re.Match[str]) -> str:
    return target(match.group(1))


def _short(match: re.Match[str]) -> str:
    old = match.group(1)
    return target(old).removeprefix("ca_service.")


def _path(match: re.Match[str]) -> str:
    old = match.group(2) or match.group(4)
    new = target(old).replace(".", "/") + (match.group(3) or "")
    return new if match.group(1) else new.removeprefix("ca_service/")


def rewrite_text(text: str, skip_lines: set[int] | None = None) -> str:
    out = []
    for number, line in enumerate(text.splitlines(keepends=True), start=1):
        if KEEP_MARKER in line or (skip_lines and number in skip_lines):
            out.append(line)
            continue
        code_import = _import_line(line)
        if code_import is not None:
            out.append(code_import)
            continue
        line = DOTTED.sub(_dotted, line)
        line = SHORT.sub(_short, line)
        line = PATH.sub(_path, line)
        out.append(line)
    return "".join(out)


IMPORT_LINE = re.compile(r"^(\s*)((?:from|import) ca_service\.services\b[^#\n]*?)(\s*(?:#.*)?\n?)$")


def _import_line(line: str) -> str | None:
    """An import statement written as text (code in a string, a document): rewritten as an import."""
    match = IMPORT_LINE.match(line)
    if match is None:
        return None
    try:
        node = ast.parse(match.group(2)).body[0]
    except (SyntaxError, IndexError):
        return None
    if not isinstance(node, ast.Import | ast.ImportFrom):
        return None
    statements = rewrite_import(node)
    if statements is None:
        return line
    return match.group(1) + ("\n" + match.group(1)).join(statements) + match.group(3)


def _alias(name: str, asname: str | None) -> str:
    return f"{name} as {asname}" if asname and asname != name else name


def _import_from(module: str, names: list[str]) -> str:
    return f"from {module} import {', '.join(names)}"


def rewrite_import(node: ast.Import | ast.ImportFrom) -> list[str] | None:
    """The statements replacing one import, or None to leave it as it is."""
    if isinstance(node, ast.Import):
        parts = [_alias(DOTTED.sub(_dotted, alias.name), alias.asname) for alias in node.names]
        before = [_alias(alias.name, alias.asname) for alias in node.names]
        return [f"import {', '.join(parts)}"] if parts != before else None
    if node.level != 0 or not node.module:
        return None
    names = [(alias.name, alias.asname) for alias in node.names]
    if node.module == PKG:
        grouped: dict[str, list[str]] = defaultdict(list)
        rest: list[str] = []
        for name, asname in names:
            if name in MOVES:
                package, module = target(name).rsplit(".", 1)
                grouped[package].append(_alias(module, asname or name))
            elif name in LEAVES:
                package, module = LEAVES[name].rsplit(".", 1)
                grouped[package].append(_alias(module, asname or name))
            else:
                rest.append(_alias(name, asname))
        if not grouped:
            return None
        statements = [_import_from(PKG, rest)] if rest else []
        statements += [_import_from(package, grouped[package]) for package in sorted(grouped)]
        return statements
    parts = node.module.split(".")
    if node.module.startswith(PKG + ".") and len(parts) >= 3 and parts[2] in [*MOVES, *LEAVES]:
        old = parts[2]
        if len(parts) > 3 and parts[3] in SUBMODULES.get(old, set()):
            return None  # ca_service.services.audit.trail: already new
        if len(parts) == 3 and old in SUBMODULES and all(name in SUBMODULES[old] for name, _ in names):
            return None  # from ca_service.services.certificates import issuance: the new package
        new_module = target(old) + ("." + ".".join(parts[3:]) if len(parts) > 3 else "")
        return [_import_from(new_module, [_alias(n, a) for n, a in names])]
    return None


def rewrite_python(text: str, path: Path) -> str:
    try:
        tree = ast.parse(text, str(path))
    except SyntaxError as exc:
        print(f"  ! {path}: not parsed ({exc.msg}); dotted names only", file=sys.stderr)
        return rewrite_text(text)
    imports = [node for node in ast.walk(tree) if isinstance(node, ast.Import | ast.ImportFrom)]
    import_lines = {n for node in imports for n in range(node.lineno, (node.end_lineno or node.lineno) + 1)}
    lines = rewrite_text(text, import_lines).splitlines(keepends=True)
    # replace import statements bottom-up so the line numbers of those above stay right
    for node in sorted(imports, key=lambda n: (n.lineno, n.col_offset), reverse=True):
        if KEEP_MARKER in lines[node.lineno - 1]:
            continue
        statements = rewrite_import(node)
        if statements is None:
            continue
        first, last = node.lineno - 1, (node.end_lineno or node.lineno) - 1
        head = lines[first][: node.col_offset]
        tail_line = lines[last]
        end_col = node.end_col_offset or len(tail_line)
        tail = tail_line.encode()[end_col:].decode()
        indent = head if head.strip() == "" else " " * len(head)
        body = ("\n" + indent).join(statements)
        lines[first : last + 1] = [head + body + tail]
    return "".join(lines)


def git(*args: str, dry_run: bool = False) -> None:
    print("  $ git " + " ".join(args))
    if not dry_run:
        subprocess.run(["git", *args], check=True)


def move_modules(dry_run: bool) -> list[str]:
    notes = []
    for package in sorted(NEW_PACKAGES):
        init = SERVICES / package / "__init__.py"
        if not init.exists():
            print(f"  + {init}")
            if not dry_run:
                init.parent.mkdir(parents=True, exist_ok=True)
                init.write_text(f'"""{PACKAGE_DOCS[package]}"""\n')
                git("add", str(init))
    for old, new in MOVES.items():
        source = SERVICES / f"{old}.py"
        dest = SERVICES / (new.replace(".", "/") + ".py")
        if source.exists() and dest.exists():
            notes.append(f"{source} and {dest} both exist: merge them by hand")
        elif source.exists():
            git("mv", str(source), str(dest), dry_run=dry_run)
    for old in LEAVES:
        source = SERVICES / f"{old}.py"
        if source.exists():
            git("rm", "-q", str(source), dry_run=dry_run)
    return notes


def text_files() -> list[Path]:
    files: list[Path] = []
    for root in REWRITE_ROOTS:
        path = Path(root)
        candidates = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
        for file in candidates:
            if SKIP_PARTS.intersection(file.parts) or file == SELF:
                continue
            if file.suffix in TEXT_SUFFIXES or file.name in {"Makefile", "Dockerfile", "run"}:
                files.append(file)
    return files


def rewrite_all(dry_run: bool) -> list[Path]:
    changed: list[Path] = []
    for path in text_files():
        try:
            text = path.read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):
            continue
        new = rewrite_python(text, path) if path.suffix == ".py" else rewrite_text(text)
        if new == text:
            continue
        changed.append(path)
        print(f"  ~ {path}")
        diff = difflib.unified_diff(text.splitlines(), new.splitlines(), str(path), str(path), n=0, lineterm="")
        for line in diff:
            if not line.startswith(("---", "+++", "@@")):
                print(f"      {line}")
        if not dry_run:
            path.write_text(new, encoding="utf-8")
    return changed


def tidy(paths: list[str]) -> None:
    """Sort and wrap the rewritten imports as the project's ruff settings want them."""
    ruff = shutil.which("ruff", path=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    if ruff is None:
        print("  ! ruff not found: run `ruff check --fix --select I . && ruff format .` yourself")
        return
    subprocess.run([ruff, "check", "--fix", "--quiet", "--select", "I", *paths], check=False)
    subprocess.run([ruff, "format", "--quiet", *paths], check=False)
    # a longer module path can push a docstring or comment over the line length: reported, for a person
    subprocess.run([ruff, "check", "--quiet", "--select", "E501", "--output-format", "concise", *paths], check=False)


def unknown_modules() -> list[str]:
    known_packages = NEW_PACKAGES
    found = []
    for entry in sorted(SERVICES.iterdir()):
        if entry.name in {"__init__.py", "__pycache__"}:
            continue
        if entry.is_dir():
            if entry.name not in known_packages:
                found.append(f"{entry}/ (package, kept as it is)")
        elif entry.suffix == ".py":
            found.append(f"{entry} (not in the mapping table: left in place)")
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dry-run", action="store_true", help="print what would change, change nothing")
    args = parser.parse_args(argv)
    if not SERVICES.is_dir():
        print("run from the repository root", file=sys.stderr)
        return 2
    print("moving modules:")
    notes = move_modules(args.dry_run)
    print("rewriting references:")
    changed = rewrite_all(args.dry_run)
    print(f"{len(changed)} files rewritten")
    python = [str(path) for path in changed if path.suffix == ".py"]
    if python and not args.dry_run:
        tidy(python)
    left = unknown_modules()
    print("not regrouped (place these by hand, then add them to MOVES):" if left else "every module regrouped")
    for line in [*left, *notes]:
        print(f"  - {line}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
