"""Build the console's message catalogues (maintainers; the result is committed):
`python -m ca_service.console.catalogue` extracts the msgids (English) from the console's Python
and templates, merges them into translations/ja/LC_MESSAGES/messages.po keeping the existing
translations, and compiles messages.mo. tests/console/test_console_app.py checks that every msgid
is translated and that the committed .mo matches the .po."""

from __future__ import annotations

import io
import subprocess
import sys
import tempfile
from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po, write_po

HERE = Path(__file__).parent
PO = HERE / "translations" / "ja" / "LC_MESSAGES" / "messages.po"


def extract(root: Path) -> bytes:
    with tempfile.TemporaryDirectory() as tmp:
        pot = Path(tmp) / "messages.pot"
        argv = [sys.executable, "-m", "babel.messages.frontend", "extract", "-F", str(HERE / "babel.cfg"), "-k", "L",
                "--no-location", "-o", str(pot), "."]  # fmt: skip
        subprocess.run(argv, check=True, capture_output=True, cwd=root)
        return pot.read_bytes()


def compile_mo(po_path: Path = PO) -> bytes:
    with po_path.open("rb") as f:
        catalog = read_po(f, locale="ja")
    out = io.BytesIO()
    write_mo(out, catalog)
    return out.getvalue()


def main() -> None:
    root = HERE.parents[1]
    template = read_po(io.BytesIO(extract(root)))
    catalog = read_po(PO.open("rb"), locale="ja") if PO.exists() else None
    known = {m.id: m.string for m in catalog} if catalog is not None else {}
    for message in template:
        if message.id:
            message.string = known.get(message.id, "")
    template.locale = catalog.locale if catalog is not None else None
    PO.parent.mkdir(parents=True, exist_ok=True)
    with PO.open("wb") as f:
        write_po(f, template, width=0, omit_header=False)
    PO.with_suffix(".mo").write_bytes(compile_mo())
    missing = [m.id for m in template if m.id and not m.string]
    print(f"{PO}: {len(template)} messages, {len(missing)} untranslated")


if __name__ == "__main__":
    main()
