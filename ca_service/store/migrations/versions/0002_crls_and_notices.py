"""crls and notices

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import ca_service.store.types

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table(
        "crls",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("issuer_id", sa.Integer(), nullable=False),
        sa.Column("crl_number", sa.BigInteger(), nullable=False),
        sa.Column("this_update", ca_service.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("next_update", ca_service.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("entries", sa.Integer(), nullable=False),
        sa.Column("revocation_count", sa.BigInteger(), nullable=False),
        sa.Column("der", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", ca_service.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["issuer_id"], ["certificate_authorities.id"], name=op.f("fk_crls_issuer_id_certificate_authorities")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_crls")),
        sa.UniqueConstraint("issuer_id", "crl_number", name=op.f("uq_crls_issuer_id_crl_number")),
    )
    op.create_table(
        "notices",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("serial", sa.String(length=40), nullable=False),
        sa.Column("login_id", sa.String(length=64), nullable=False),
        sa.Column("not_after", ca_service.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("created_at", ca_service.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("email_status", sa.String(length=16), nullable=False),
        sa.Column("email_attempts", sa.Integer(), nullable=False),
        sa.Column("email_last_error", sa.Text(), nullable=True),
        sa.Column("email_sent_at", ca_service.store.types.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["serial"], ["certificates.serial"], name=op.f("fk_notices_serial_certificates")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notices")),
        sa.UniqueConstraint("serial", "kind", name=op.f("uq_notices_serial_kind")),
    )
    with op.batch_alter_table("notices", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_notices_login_id"), ["login_id"], unique=False)
    with op.batch_alter_table("certificate_authorities", schema=None) as batch_op:
        batch_op.add_column(sa.Column("revocation_count", sa.BigInteger(), server_default="0", nullable=False))


def downgrade() -> None:
    with op.batch_alter_table("certificate_authorities", schema=None) as batch_op:
        batch_op.drop_column("revocation_count")

    with op.batch_alter_table("notices", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_notices_login_id"))

    op.drop_table("notices")
    op.drop_table("crls")
