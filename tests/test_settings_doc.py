"""Issue 27 §5: one complete configuration table, produced from config/settings.py. It fails when
a variable the code reads is missing from docs/configuration.md or has no sentence, or when the
committed table is not what `make docs` produces (the lead regenerates it at merge)."""

from __future__ import annotations

import re
from pathlib import Path

from config import settings_doc

ROOT = Path(__file__).parents[1]


def _documented() -> set[str]:
    return set(re.findall(r"^\| `([A-Z0-9_]+)` \|", settings_doc.DOC.read_text(encoding="utf-8"), re.M))


def test_every_variable_the_code_reads_is_in_the_table_with_a_sentence():
    read: set[str] = set()
    for part in settings_doc.SETTINGS_PARTS:  # settings.py and the groups it delegates (webhook_settings.py)
        read |= set(re.findall(r"\"(CA_[A-Z0-9_]+|DATABASE_URL|REDIS_URL)\"", part.read_text()))
    for path in (ROOT / "ca_service").rglob("*.py"):  # variables a command reads itself (os.environ)
        read |= set(re.findall(r"environ(?:\.get\(|\[)\"(CA_[A-Z0-9_]+)\"", path.read_text(encoding="utf-8")))
    assert {"CA_TRUSTED_PROXIES", "CA_CONSOLE_SECURE_COOKIES", "CA_DB_LOCK_TIMEOUT_MS", "CA_AUTH_FAILURE_LIMIT"} <= read
    assert sorted(read - _documented()) == [], "run `make docs` (and describe new settings in config/settings_doc.py)"
    assert sorted(read - set(settings_doc.MEANINGS)) == []
    assert settings_doc.UNDESCRIBED not in settings_doc.DOC.read_text(encoding="utf-8")


def test_the_committed_table_is_what_make_docs_produces_and_lists_each_variable_once():
    current = settings_doc.DOC.read_text(encoding="utf-8")
    assert settings_doc.render(current) == current, "docs/configuration.md is out of date: run `make docs`"
    names = re.findall(r"^\| `([A-Z0-9_]+)` \|", current, re.M)
    assert len(names) == len(set(names)) > 50
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "docs/configuration.md" in readme and not re.search(r"^\| `CA_", readme, re.M)  # one table, not two


def test_a_new_setting_without_a_sentence_is_reported():
    source = 'def load(env):\n    return _int(env, "CA_BRAND_NEW", 3, 1, 9), env.get("CA_OTHER") or "x"\n'
    found = settings_doc.from_settings(source)
    assert found["CA_BRAND_NEW"] == "`3` (1..9)" and found["CA_OTHER"] == "`x`"
    assert "CA_BRAND_NEW" not in settings_doc.MEANINGS
