"""security limits (issue 13): login IDs unique ignoring case, API token expiry and rotation,
who revoked (for the front-end revocation brake)

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import ca_service.store.types

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    bind = op.get_bind()
    clashes = bind.execute(
        sa.text("SELECT lower(login_id), count(*) FROM users GROUP BY lower(login_id) HAVING count(*) > 1 ORDER BY 1 LIMIT 20")
    ).all()
    if clashes:
        names = ", ".join(f"{row[0]} ({row[1]} spellings)" for row in clashes)
        raise RuntimeError(
            "login IDs must be unique ignoring case, and these are registered in several spellings: "
            f"{names}. Resolve them (docs/operations.md, 'Login IDs and case') and run init again."
        )
    op.create_index("uq_users_login_id_lower", "users", [sa.text("lower(login_id)")], unique=True)

    with op.batch_alter_table("api_clients") as batch:
        batch.add_column(sa.Column("expires_at", ca_service.store.types.UTCDateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("previous_token_hash", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("previous_token_expires_at", ca_service.store.types.UTCDateTime(timezone=True), nullable=True))
        batch.create_unique_constraint(op.f("uq_api_clients_previous_token_hash"), ["previous_token_hash"])

    with op.batch_alter_table("certificates") as batch:
        batch.add_column(sa.Column("revoked_by_role", sa.String(length=16), nullable=True))
    op.create_index(
        "ix_certificates_frontend_revocations",
        "certificates",
        ["org_id", "revoked_at"],
        postgresql_where=sa.text("revoked_by_role = 'frontend'"),
        sqlite_where=sa.text("revoked_by_role = 'frontend'"),
    )


def downgrade() -> None:
    op.drop_index("ix_certificates_frontend_revocations", table_name="certificates")
    with op.batch_alter_table("certificates") as batch:
        batch.drop_column("revoked_by_role")
    with op.batch_alter_table("api_clients") as batch:
        batch.drop_constraint(op.f("uq_api_clients_previous_token_hash"), type_="unique")
        batch.drop_column("previous_token_expires_at")
        batch.drop_column("previous_token_hash")
        batch.drop_column("expires_at")
    op.drop_index("uq_users_login_id_lower", table_name="users")
