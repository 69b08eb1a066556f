"""Migration 0010 (operators, approvals, audit_events.target_id and certificates.fingerprint_sha256
indexes) goes down to 0009 and up again on a database of its own."""

from __future__ import annotations

from alembic import command
from sqlalchemy import create_engine, inspect

from ca_service.store.migrate import alembic_config, upgrade_to_head


def test_0010_downgrades_and_upgrades(tmp_path):
    engine = create_engine(f"sqlite:///{tmp_path / 'm.sqlite3'}")
    upgrade_to_head(engine)
    assert {"operators", "approvals"} <= set(inspect(engine).get_table_names())
    config = alembic_config(engine)
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.downgrade(config, "0009")
    tables = set(inspect(engine).get_table_names())
    assert "operators" not in tables and "approvals" not in tables
    assert "ix_audit_events_target_id" not in {i["name"] for i in inspect(engine).get_indexes("audit_events")}
    upgrade_to_head(engine)
    assert "ix_certificates_fingerprint_sha256" in {i["name"] for i in inspect(engine).get_indexes("certificates")}
