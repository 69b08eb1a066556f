"""enrolment codes (issue 23): one-time codes for EST simpleenroll, stored as hashes

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import ca_service.store.types

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "enrolment_codes",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("login_id", sa.String(length=64), nullable=False),
        sa.Column("code_hash", sa.String(length=64), nullable=False),
        sa.Column("minted_by", sa.String(length=100), nullable=False),
        sa.Column("minted_role", sa.String(length=16), nullable=False),
        sa.Column("ticket", sa.String(length=100), nullable=True),
        sa.Column("minted_at", ca_service.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", ca_service.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("used_at", ca_service.store.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("certificate_serial", sa.String(length=40), nullable=True),
        sa.Column("voided_at", ca_service.store.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("void_reason", sa.String(length=32), nullable=True),
        sa.ForeignKeyConstraint(["login_id"], ["users.login_id"], name=op.f("fk_enrolment_codes_login_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_enrolment_codes")),
    )
    op.create_index(op.f("ix_enrolment_codes_login_id"), "enrolment_codes", ["login_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_enrolment_codes_login_id"), table_name="enrolment_codes")
    op.drop_table("enrolment_codes")
