"""operator console (issue 15): operator accounts, dual-control approvals, audit events by target

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import ca_service.store.types

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "operators",
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("display_name", sa.String(length=200), nullable=True),
        sa.Column("password_hash", sa.String(length=200), nullable=False),
        sa.Column("totp_secret", sa.String(length=255), nullable=False),
        sa.Column("created_at", ca_service.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("disabled_at", ca_service.store.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("failed_logins", sa.Integer(), server_default="0", nullable=False),
        sa.Column("locked_until", ca_service.store.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_login_at", ca_service.store.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_totp_step", sa.BigInteger(), nullable=True),
        sa.Column("session_epoch", sa.Integer(), server_default="0", nullable=False),
        sa.PrimaryKeyConstraint("username", name=op.f("pk_operators")),
    )
    op.create_table(
        "approvals",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("target_id", sa.String(length=128), nullable=False),
        sa.Column("params", sa.Text(), nullable=False),
        sa.Column("ticket", sa.String(length=100), nullable=False),
        sa.Column("requested_by", sa.String(length=64), nullable=False),
        sa.Column("requested_at", ca_service.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", ca_service.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("decided_by", sa.String(length=64), nullable=True),
        sa.Column("decided_at", ca_service.store.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("outcome", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_approvals")),
    )
    op.create_index(op.f("ix_approvals_status"), "approvals", ["status"], unique=False)
    # the console's organisation and user pages read an object's history by target
    op.create_index(op.f("ix_audit_events_target_id"), "audit_events", ["target_id"], unique=False)
    # the console's search finds a certificate by its SHA-256 fingerprint
    op.create_index(op.f("ix_certificates_fingerprint_sha256"), "certificates", ["fingerprint_sha256"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_certificates_fingerprint_sha256"), table_name="certificates")
    op.drop_index(op.f("ix_audit_events_target_id"), table_name="audit_events")
    op.drop_index(op.f("ix_approvals_status"), table_name="approvals")
    op.drop_table("approvals")
    op.drop_table("operators")
