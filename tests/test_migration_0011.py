"""Migration 0011 (enrolment_codes, issue 23) matches the model, and goes down to 0010 and up again."""

from __future__ import annotations

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, inspect

from ca_service.store.migrate import alembic_config, upgrade_to_head
from ca_service.store.models import Base


def test_0011_matches_the_model_and_downgrades(tmp_path):
    engine = create_engine(f"sqlite:///{tmp_path / 'm.sqlite3'}")
    upgrade_to_head(engine)
    with engine.connect() as conn:
        diffs = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert not [d for d in diffs if "enrolment_codes" in repr(d)], diffs
    config = alembic_config(engine)
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.downgrade(config, "0010")
    assert "enrolment_codes" not in set(inspect(engine).get_table_names())
    upgrade_to_head(engine)
    assert "ix_enrolment_codes_login_id" in {i["name"] for i in inspect(engine).get_indexes("enrolment_codes")}
